"""The API documentation works on a network without internet access."""

import re

import httpx


def test_swagger_ui_loads_its_assets_from_eventyard(http: httpx.Client) -> None:
    """/docs must not depend on a CDN: every script and stylesheet it loads is served here."""
    page = http.get("/docs")
    assert page.status_code == 200
    assets = re.findall(r"""(?:src|href)=["']([^"']+\.(?:js|css))["']""", page.text)
    assert assets, page.text
    for asset in assets:
        assert asset.startswith("/"), f"/docs loads {asset} from another host"
        assert http.get(asset).status_code == 200, asset
