"""Telling a client its import ended: a signed callback POST and an e-mail, each a job.

Both are durable jobs of their own, enqueued in the transaction that ends the
import, so a restart loses neither; a failed delivery is retried with the
jobs' exponential backoff (``EVENTYARD_JOB_RETRY_BASE_SECONDS``).
"""

from __future__ import annotations

import smtplib
from email.message import EmailMessage
from typing import Any

import orjson

from eventyard.core.signatures import SIGNATURE_HEADER, signature
from eventyard.services.jobs import JobFailed, JobRun
from eventyard.services.sources import SourceRefused, guarded_client


class DeliveryFailed(Exception):
    """The receiver did not accept the callback; the job is retried."""


def run_callback_job(run: JobRun) -> dict[str, Any]:
    """POST the import report to the callback URL, signed with the account's secret.

    A 2xx answer delivers it; anything else (or no answer) is retried. The
    URL passes the SSRF rule again at each attempt; redirects are not
    followed (a POST must not turn into a GET elsewhere).
    """
    job = run.job
    with run.store.unit_of_work(write=False) as uow:
        account = uow.accounts.get(job.account_id) if job.account_id else None
    if account is None:
        raise JobFailed(f"account {job.account_id} no longer exists")
    if not account.signing_secret:
        raise JobFailed("the account has no signing secret")
    body = orjson.dumps(job.payload["body"])
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "eventyard-callback",
        SIGNATURE_HEADER: signature(account.signing_secret, body),
        "X-Eventyard-Request-Id": str(job.payload["body"].get("requestid", "")),
    }
    try:
        with guarded_client(run.settings, follow_redirects=False) as client:
            response = client.post(job.payload["url"], content=body, headers=headers)
    except SourceRefused as exc:
        raise JobFailed(f"callback refused: {exc}") from exc
    if not 200 <= response.status_code < 300:
        raise DeliveryFailed(f"callback answered {response.status_code}")
    return {"status_code": response.status_code, "attempts": job.attempts}


def import_email(report: dict[str, Any], source: str, sender: str, to: str) -> EmailMessage:
    """The notification e-mail of an import report."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = f"eventyard bulk upload {report['requestid']}: {report['status']}"
    lines = [
        f"Bulk upload {report['requestid']} {report['status']} at {report['finished_at']}.",
        "",
        f"File: {source}",
        f"List: {report['listid'] if report['listid'] is not None else 'none (contacts only)'}",
        f"Rows: {report['total']}",
        f"Created: {report['created']}",
        f"Updated: {report['updated']}",
        f"Failed: {report['failed']}",
    ]
    if report.get("error"):
        lines += ["", f"Error: {report['error']}"]
    if report["errors"]:
        lines += ["", "First rows skipped:"]
        lines += [f"  row {e['row']}: {e['reason']}" for e in report["errors"]]
    message.set_content("\n".join(lines) + "\n")
    return message


def run_email_job(run: JobRun) -> dict[str, Any]:
    """Send the import's notification e-mail through the SMTP server of the settings."""
    settings = run.settings
    if not settings.smtp_host:
        raise JobFailed("no SMTP server is configured (EVENTYARD_SMTP_HOST)")
    payload = run.job.payload
    message = import_email(payload["report"], payload["source"], settings.smtp_from, payload["to"])
    with smtplib.SMTP(
        settings.smtp_host, settings.smtp_port, timeout=settings.fetch_timeout_seconds
    ) as smtp:
        if settings.smtp_starttls:
            smtp.starttls()
        if settings.smtp_username:
            smtp.login(settings.smtp_username, settings.smtp_password)
        smtp.send_message(message)
    return {"to": payload["to"]}
