"""An unexpected failure is still answered in the client's dialect and traceable.

Provoked for real: a server pointed at a PostgreSQL database whose schema was
never migrated fails every query with "relation does not exist", a fault no
handler expects (an outage would be a 503 instead).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from tests.support import Server, netcore_event, running_server, scratch_postgres_database


@pytest.fixture
def unmigrated_server(postgres_url: str, tmp_path: Path) -> Iterator[Server]:
    with (
        scratch_postgres_database(postgres_url) as url,
        running_server(url, tmp_path / "server.log") as server,
    ):
        yield server


def test_500_has_the_dialect_shape_a_request_id_and_a_logged_traceback(
    unmigrated_server: Server,
) -> None:
    r = httpx.post(
        f"{unmigrated_server.base_url}/v1/activity/upload",
        json=[netcore_event()],
        headers={"api-key": "any", "X-Request-ID": "trace-me-123"},
    )
    assert r.status_code == 500
    # Netcore's table: "500 | Internal Server Error".
    assert r.json() == {"status": "error", "code": 500, "message": "Internal Server Error"}
    assert r.headers["X-Request-ID"] == "trace-me-123"
    entries = [orjson.loads(line) for line in unmigrated_server.logs().splitlines()]
    [error] = [e for e in entries if e["msg"] == "unhandled error"]
    assert error["request_id"] == "trace-me-123"
    assert "UndefinedTable" in error["exc"]
    # The server keeps answering after it.
    assert httpx.get(f"{unmigrated_server.base_url}/healthz").status_code == 200
