"""Signing keys: this machine's own ed25519 key, and the public keys it trusts.

Keys are written the way Nix writes its binary caches' keys, `NAME:BASE64`: a name
that says whose key it is (`alice@laptop-1a2b3c4d`, ending in a fingerprint of the
key), a colon, and the key's 32 bytes in base64. Two files under the Stardag home
hold them:

    signing-key            this machine's secret key (mode 0600), made on first need
    trusted-public-keys    one public key per line, added by `stardag remote trust KEY`

Invariant: the secret key file is created whole and private, or not at all (written
to a 0600 temporary file, then linked into place, so two processes that both need a
key end up with the same one), and it is never rewritten. Your own public key is
always trusted; no other key is trusted unless it is in the file.
"""

from __future__ import annotations

import base64
import binascii
import getpass
import hashlib
import os
import re
import socket
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from stardag._config import stardag_home
from stardag._errors import SigningKeyError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

__all__ = [
    "PublicKey",
    "own_public_key",
    "parse_public_key",
    "sign",
    "trust",
    "trusted_keys",
    "untrust",
]

SECRET_FILE = "signing-key"
TRUSTED_FILE = "trusted-public-keys"
KEY_BYTES = 32
KEY_NAME = re.compile(r"[A-Za-z0-9._@+-]{1,100}")


@dataclass(frozen=True)
class PublicKey:
    """A named ed25519 public key (`NAME:BASE64`)."""

    name: str
    raw: bytes

    def __str__(self) -> str:
        return f"{self.name}:{base64.b64encode(self.raw).decode()}"

    def verifies(self, signature: bytes, message: bytes) -> bool:
        """Whether `signature` is this key's signature of `message`."""
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

        try:
            Ed25519PublicKey.from_public_bytes(self.raw).verify(signature, message)
        except InvalidSignature:
            return False
        return True


def parse_public_key(text: str) -> PublicKey:
    """A public key from `NAME:BASE64`; `SigningKeyError` saying what is wrong if it is not."""
    name, raw = _split(text.strip(), "public key")
    return PublicKey(name, raw)


def _split(text: str, what: str) -> tuple[str, bytes]:
    name, colon, encoded = text.partition(":")
    if not colon or not KEY_NAME.fullmatch(name):
        raise SigningKeyError(
            f"{_shown(text)} is not a {what}: expected NAME:BASE64 (as `stardag remote key` "
            "prints it), NAME of letters, digits and ._@+-"
        )
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != KEY_BYTES:
        raise SigningKeyError(
            f"{_shown(text)} is not a {what}: the part after the colon must be "
            f"{KEY_BYTES} bytes in base64"
        )
    return name, raw


def _shown(text: str) -> str:
    return repr(text if len(text) <= 80 else text[:77] + "...")


# -- this machine's key ----------------------------------------------------------------------
def secret_key_path() -> Path:
    """Where this Stardag home keeps its secret signing key."""
    return Path(stardag_home()) / SECRET_FILE


def own_public_key(*, create: bool = False) -> PublicKey | None:
    """This machine's public key (None if it has none yet and `create` is false)."""
    found = _own_secret(create=create)
    if found is None:
        return None
    name, key = found
    return PublicKey(name, _public_bytes(key))


def sign(message: bytes) -> tuple[str, bytes]:
    """This machine's key name and its signature of `message` (the key is made if need be)."""
    found = _own_secret(create=True)
    assert found is not None
    name, key = found
    return name, key.sign(message)


def _own_secret(*, create: bool) -> tuple[str, Ed25519PrivateKey] | None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    path = secret_key_path()
    try:
        text = path.read_text()
    except FileNotFoundError:
        if not create:
            return None
        text = _create_secret(path)
    except OSError as exc:
        raise SigningKeyError(f"cannot read the signing key {path}: {exc}") from None
    loaded = _LOADED.get((str(path), text))  # loading a key costs about as much as a signature
    if loaded is None:
        try:
            name, seed = _split(text.strip(), "signing key")
        except SigningKeyError as exc:
            raise SigningKeyError(f"{path} is damaged: {exc}") from None
        loaded = _LOADED[(str(path), text)] = (name, Ed25519PrivateKey.from_private_bytes(seed))
    return loaded


_LOADED: dict[tuple[str, str], tuple[str, Ed25519PrivateKey]] = {}  # (path, file text) -> key


def _create_secret(path: Path) -> str:
    """Write a new key to `path` unless one appears there first; the key now there."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        NoEncryption,
        PrivateFormat,
    )

    key = Ed25519PrivateKey.generate()
    seed = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    text = f"{default_key_name(_public_bytes(key))}:{base64.b64encode(seed).decode()}\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        try:
            os.link(temp, path)  # never replaces a key another process made meanwhile
        except FileExistsError:
            return path.read_text()
    finally:
        temp.unlink(missing_ok=True)
    return text


def default_key_name(public: bytes) -> str:
    """`user@host-1a2b3c4d` (the key's fingerprint: two machines' names rarely collide)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "stardag"
    host = socket.gethostname().split(".")[0]
    raw = f"{user}@{host}"[:80] + f"-{hashlib.sha256(public).hexdigest()[:8]}"
    return re.sub(r"[^A-Za-z0-9._@+-]", "-", raw)


def _public_bytes(key: Ed25519PrivateKey) -> bytes:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


# -- the keys this machine trusts -----------------------------------------------------------
def trusted_path() -> Path:
    """Where this Stardag home lists the public keys it trusts."""
    return Path(stardag_home()) / TRUSTED_FILE


def trusted_keys() -> list[PublicKey]:
    """Every public key whose signatures this machine accepts: its own, then the file's."""
    own = own_public_key()
    return ([own] if own is not None else []) + [k for k in _listed() if k != own]


def _listed() -> list[PublicKey]:
    path = trusted_path()
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise SigningKeyError(f"cannot read the trusted keys {path}: {exc}") from None
    keys = []
    for number, line in enumerate(lines, 1):
        if line.strip() and not line.lstrip().startswith("#"):
            try:
                keys.append(parse_public_key(line))
            except SigningKeyError as exc:
                raise SigningKeyError(f"{path}, line {number}: {exc}") from None
    return keys


def trust(key: PublicKey) -> bool:
    """Add a public key to the trusted ones; False if it was trusted already."""
    listed = _listed()
    if key in listed:
        return False
    _write_listed([*listed, key])
    return True


def untrust(key: PublicKey) -> bool:
    """Remove a public key from the trusted ones; False if it was not listed.

    Your own key stays trusted whatever the file says.
    """
    listed = _listed()
    if key not in listed:
        return False
    _write_listed([k for k in listed if k != key])
    return True


def _write_listed(keys: list[PublicKey]) -> None:
    path = trusted_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex}")
    temp.write_text("".join(f"{key}\n" for key in keys))
    temp.replace(path)
