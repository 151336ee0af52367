"""Destination credentials, encrypted at rest (Fernet: AES-128-CBC with an HMAC-SHA256).

The key comes from ``EVENTYARD_SECRET_KEY`` (each comma-separated entry is
hashed into a Fernet key: the first encrypts, every one decrypts, so a key is
rotated by putting the new one first and PATCHing the credentials again);
without it, the instance creates a random key on first use and keeps it in
its database (``instance_secrets``), where every process finds the same one.
That protects copies of the destinations table, not a copy of the whole
database: set ``EVENTYARD_SECRET_KEY`` for that.
"""

from __future__ import annotations

import base64
import hashlib
import threading
from collections.abc import Mapping
from datetime import UTC, datetime

import orjson
from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from eventyard.services.ports import Store
from eventyard.settings import Settings

#: The instance secret holding the key when EVENTYARD_SECRET_KEY is unset.
INSTANCE_KEY_NAME = "destination_credentials_key"


class CredentialsUnreadable(Exception):
    """The stored credentials do not open with the keys this process has."""


def _fernet_key(secret: str) -> bytes:
    return base64.urlsafe_b64encode(hashlib.sha256(secret.encode()).digest())


class CredentialSealer:
    """Encrypts and decrypts destination credentials; the key is found on first use."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self._fernet: MultiFernet | None = None
        self._lock = threading.Lock()

    def _keys(self) -> MultiFernet:
        with self._lock:
            if self._fernet is None:
                secrets = [s.strip() for s in self.settings.secret_key.split(",") if s.strip()]
                if secrets:
                    keys = [_fernet_key(s) for s in secrets]
                else:
                    with self.store.unit_of_work() as uow:
                        key = uow.console.instance_secret(
                            INSTANCE_KEY_NAME, Fernet.generate_key().decode(), datetime.now(UTC)
                        )
                        uow.commit()
                    keys = [key.encode()]
                self._fernet = MultiFernet([Fernet(k) for k in keys])
            return self._fernet

    def seal(self, credentials: Mapping[str, str]) -> str:
        return self._keys().encrypt(orjson.dumps(dict(credentials))).decode()

    def open(self, sealed: str) -> dict[str, str]:
        try:
            opened = orjson.loads(self._keys().decrypt(sealed.encode()))
        except InvalidToken as exc:
            raise CredentialsUnreadable(
                "the destination's credentials do not decrypt with EVENTYARD_SECRET_KEY "
                "(was it changed?): PATCH its credentials again"
            ) from exc
        return {str(k): str(v) for k, v in opened.items()}
