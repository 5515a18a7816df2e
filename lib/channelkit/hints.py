"""One-line explanations, with the fix, for the errors a newcomer meets first.

A raw ``DefaultCredentialsError`` or a gRPC retry timeout says what broke but
not what to do. ``explain(error, environ)`` walks the error's cause chain and,
when it recognises the situation (no credentials, no project, an emulator that
does not answer), returns one line naming what is missing and the command or
setting that fixes it; otherwise None. Pure: the environment is passed in.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping

__all__ = ["explain"]

LOCAL_STORE = "CHANNELKIT_STORE=sqlite:///channels.sqlite3"
_REFUSED = ("failed to connect", "connection refused", "unavailable", "deadline", "timeout of")


def explain(error: BaseException, environ: Mapping[str, str]) -> str | None:
    """A one-line reason with its fix, or None when the error is not a known first hurdle."""
    chain = list(_causes(error))
    names = {type(exc).__name__ for exc in chain}
    text = " ".join(str(exc) for exc in chain).lower()
    emulator = environ.get("FIRESTORE_EMULATOR_HOST", "").strip()
    if "ProjectUnknownError" in names or "project was not passed" in text:
        return (
            "no Google Cloud project: set GOOGLE_CLOUD_PROJECT=YOUR_PROJECT "
            "(or run `gcloud config set project YOUR_PROJECT`)"
        )
    if "DefaultCredentialsError" in names or "no google credentials" in text:
        key_file = environ.get("GOOGLE_APPLICATION_CREDENTIALS", "").strip()
        if key_file and not os.path.exists(key_file):
            return (
                f"GOOGLE_APPLICATION_CREDENTIALS names {key_file}, which does not exist: point it at a "
                "key file, or unset it and run `gcloud auth application-default login`"
            )
        return (
            "no Google credentials: run `gcloud auth application-default login`; for a local run "
            f"use the Firestore emulator (FIRESTORE_EMULATOR_HOST=HOST:PORT) or {LOCAL_STORE}"
        )
    if emulator and "StoreUnavailable" in names and any(word in text for word in _REFUSED):
        return (
            f"the Firestore emulator at {emulator} (FIRESTORE_EMULATOR_HOST) does not answer: start it "
            f"with `gcloud emulators firestore start --host-port={emulator}`, or unset "
            f"FIRESTORE_EMULATOR_HOST to use Cloud Firestore, or use {LOCAL_STORE}"
        )
    return None


def _causes(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__
