"""Signed action records: who wrote a remote's record, and whether this machine trusts them.

A push signs each record it puts on a remote with this machine's key (`_keys`) and
writes the signature beside it, `records/<id[:2]>/<id[2:]>.sig`, one `NAME:BASE64` line
per signer, before the record itself. What is signed is the record's exact bytes,
prefixed with a fixed tag and the task id, so a signature vouches for one record of
one task: an altered record, or a signed record copied under another task id, fails.

Invariant: a reader uses a remote record only if the bytes it parses are the bytes
it verified (read once), signed by a key it trusts, unless the remote itself is
marked trusted. Blobs need no signature: they are named by their digest, which the
signed record pins.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence

from stardag._errors import UntrustedRecordError
from stardag.remote._config import Remote
from stardag.remote._keys import KEY_NAME, PublicKey, sign
from stardag.store._store import ActionRecord, Store, record_path, signature_path

__all__ = ["read_trusted", "signature_file"]

# Never change: every signature made so far would stop verifying.
TAG = b"stardag action record v1\n"


def message(task_id: str, data: bytes) -> bytes:
    """What a record's signature signs: the tag, the task id, the record's exact bytes."""
    return TAG + task_id.encode() + b"\n" + data


def signature_file(task_id: str, data: bytes) -> bytes:
    """The `.sig` file that vouches for `data` as the record of `task_id`, by this machine."""
    name, signature = sign(message(task_id, data))
    return f"{name}:{base64.b64encode(signature).decode()}\n".encode()


def read_trusted(
    remote: Remote, source: Store, task_id: str, keys: Sequence[PublicKey]
) -> ActionRecord | None:
    """The remote's record of `task_id` (None if it has none), validated and, unless the
    remote is trusted, signed by one of `keys`; else `UntrustedRecordError`."""
    try:
        data = source.backend.read_bytes(record_path(task_id))
    except FileNotFoundError:
        return None
    if not remote.trusted:
        _check_signed(remote, source, task_id, data, keys)
    return ActionRecord.from_json(data, task_id)


def _check_signed(
    remote: Remote, source: Store, task_id: str, data: bytes, keys: Sequence[PublicKey]
) -> None:
    try:
        lines = source.backend.read_bytes(signature_path(task_id)).decode("ascii").splitlines()
    except (FileNotFoundError, UnicodeDecodeError):
        lines = []
    signed = message(task_id, data)
    signers = []
    for name, signature in (_parsed(line) for line in lines):
        signers.append(name)
        if any(k.name == name and k.verifies(signature, signed) for k in keys):
            return
    raise UntrustedRecordError(
        f"remote {remote.name}: the action record of task {task_id} {_why(signers, keys)}; "
        "it was not used. If you trust its writer, run `stardag remote trust KEY` with the "
        "key `stardag remote key` prints on their machine (or, if you trust everyone who "
        f"can write to {remote.url}, add the remote with --trusted)",
        remote=remote.name,
        task_id=task_id,
    )


def _parsed(line: str) -> tuple[str, bytes]:
    name, _colon, encoded = line.strip().partition(":")
    if not KEY_NAME.fullmatch(name):
        name = "?"  # the remote's text goes into a message: only a key name's characters
    try:
        return name, base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        return name, b""


def _why(signers: list[str], keys: Sequence[PublicKey]) -> str:
    if not signers:
        return "is not signed"
    known = {k.name for k in keys}
    if known.intersection(signers):
        return (
            f"carries a signature in the name of {', '.join(sorted(known.intersection(signers)))}"
            ", a key you trust, that does not match it (the record was altered or moved from "
            "another task, or another key of that name signed it)"
        )
    return f"is signed by {', '.join(signers)}, a key you do not trust"
