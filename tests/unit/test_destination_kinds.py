"""What every vendor destination format promises, whichever it is (``core/delivery.py``)."""

from __future__ import annotations

import pytest

from eventyard.core.delivery import DestinationFormat
from eventyard.dialects.registry import BUILTIN_DIALECTS
from tests.outgoing import outgoing

FORMATS = [d.destination for d in BUILTIN_DIALECTS if d.destination is not None]
#: Credentials of the right keys for any format.
CREDENTIALS_OF = {"write_key": "k", "api_key": "k", "account_id": "A", "passcode": "p"}


def credentials(form: DestinationFormat) -> dict[str, str]:
    return {field: CREDENTIALS_OF.get(field, "secret") for field in form.credential_fields}


def test_every_vendor_dialect_of_the_issue_declares_its_kind_once() -> None:
    kinds = [form.kind for form in FORMATS]
    assert len(kinds) == len(set(kinds))
    assert {"segment", "netcore", "cordial", "ortto", "clevertap"} <= set(kinds)
    for dialect in BUILTIN_DIALECTS:
        if dialect.destination is not None:
            assert dialect.destination.kind == dialect.name


@pytest.mark.parametrize("form", FORMATS, ids=[f.kind for f in FORMATS])
def test_requests_keep_the_batch_order_and_the_format_limits(form: DestinationFormat) -> None:
    activities = [
        outgoing(("email", f"u{i % 7}@example.com"), properties={"text": "x" * (i % 5000)})
        for i in range(1500)
    ]
    requests = form.build_requests("http://receiver.test", credentials(form), activities, "d")
    assert [i for r in requests for i in r.activity_ids] == [a.id for a in activities]
    for request in requests:
        assert 1 <= len(request.activity_ids) <= form.max_records
        assert len(request.body) <= form.max_bytes
        assert request.url.startswith("http://receiver.test/")


@pytest.mark.parametrize("form", FORMATS, ids=[f.kind for f in FORMATS])
def test_the_same_batch_builds_the_same_requests(form: DestinationFormat) -> None:
    """A format is pure: a retried delivery is byte for byte the one that failed."""
    activities = [outgoing(("identity", f"u{i}"), ("anonid", f"a{i}")) for i in range(30)]
    first = form.build_requests("http://r.test", credentials(form), activities, "d")
    again = form.build_requests("http://r.test", credentials(form), activities, "d")
    assert first == again


@pytest.mark.parametrize("form", FORMATS, ids=[f.kind for f in FORMATS])
def test_an_activity_too_large_for_any_request_goes_alone(form: DestinationFormat) -> None:
    huge = outgoing(("email", "big@example.com"), properties={"blob": "x" * form.max_bytes})
    small = [outgoing(("email", f"s{i}@example.com")) for i in range(3)]
    requests = form.build_requests(
        "http://r.test", credentials(form), [small[0], huge, *small[1:]], "d"
    )
    assert (huge.id,) in [r.activity_ids for r in requests]
