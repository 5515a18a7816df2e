"""Stored user credentials in the store: a record per key, changed by compare-and-set.

Only translation to the primitives of ``documents``: sealing and opening the
secrets is ``user_credentials``' job, with the keyring the caller holds.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable

from channelkit.errors import CredentialNotFoundError
from channelkit.store.documents import Documents
from channelkit.user_credentials import StoredCredential

__all__ = [
    "CredentialRecords",
]

CREDENTIALS = "credentials"


class CredentialRecords(Documents):
    """The stored-credentials half of the store."""

    def find_credential(self, key: str) -> StoredCredential | None:
        found = self._doc_read(CREDENTIALS, key)
        return StoredCredential.from_record(found[0]) if found else None

    def get_credential(self, key: str) -> StoredCredential:
        found = self.find_credential(key)
        if found is None:
            raise CredentialNotFoundError(
                f"no stored credentials {key!r} (python -m channelkit credentials add)"
            )
        return found

    def put_credential(self, credential: StoredCredential) -> bool:
        """Create the record; False (nothing written) if the key is taken: use ``change_credential``."""
        return self._doc_insert(CREDENTIALS, credential.key, credential.to_record())

    def change_credential(
        self, key: str, change: Callable[[StoredCredential], StoredCredential | None]
    ) -> StoredCredential | None:
        return self._doc_change(
            CREDENTIALS,
            key,
            StoredCredential.from_record,
            StoredCredential.to_record,
            change,
            lambda: CredentialNotFoundError(f"no stored credentials {key!r}"),
        )

    def list_credentials(self) -> builtins.list[StoredCredential]:
        found = [StoredCredential.from_record(r) for r in self._doc_query(CREDENTIALS)]
        return sorted(found, key=lambda c: c.key)

    def delete_credential(self, key: str) -> bool:
        """Delete the record (False if there was none)."""
        while True:
            found = self._doc_read(CREDENTIALS, key)
            if found is None:
                return False
            if self._doc_delete(CREDENTIALS, key, found[1]):
                return True

    def note_refresh(self, key: str, now_ms: int) -> None:
        """When the credential last gave a token (blind write; for ``credentials list``)."""
        self._doc_touch(CREDENTIALS, key, {"refreshedAt": now_ms})
