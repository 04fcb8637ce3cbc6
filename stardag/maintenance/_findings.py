"""What verify finds: a `Finding` of one `Kind`, with the path, digest and tasks involved.

Shared by `verify` (which finds) and `repair` (which acts on findings): kinds are damage
(errors) or garbage (warnings), and `BLOB_DAMAGE` names the kinds that condemn a blob.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Kind(str, enum.Enum):
    """What is wrong."""

    CORRUPT_FRAME = "corrupt-frame"  # the zstd frame does not decode (or fails its checksum)
    TRUNCATED_FRAME = "truncated-frame"  # the frame ends before it is whole
    DIGEST_MISMATCH = "digest-mismatch"  # the bytes decode but hash to another digest
    MISSING_BLOB = "missing-blob"  # an action record needs a blob that is not stored
    INVALID_RECORD = "invalid-record"  # an action record is malformed
    SPEC_MISMATCH = "spec-mismatch"  # a record's spec does not hash to its task id
    OUTPUT_MISSING = "output-missing"  # the registry's current output has no bytes left
    ORPHAN_TEMP = "orphan-temp"  # a temp file older than the grace period (warning)
    UNRECORDED_BLOB = "unrecorded-blob"  # a blob no record or output row names (warning)
    CHECKOUT_MODIFIED = "checkout-modified"  # a directory checkout differs from its output

    @property
    def is_warning(self) -> bool:
        """Whether this is garbage to clean rather than damage."""
        return self in (Kind.ORPHAN_TEMP, Kind.UNRECORDED_BLOB)


BLOB_DAMAGE = (Kind.CORRUPT_FRAME, Kind.TRUNCATED_FRAME, Kind.DIGEST_MISMATCH)


@dataclass
class Finding:
    """One problem: its kind, the store path, the digest and tasks involved."""

    kind: Kind
    path: str
    detail: str
    digest: str | None = None
    task_ids: tuple[str, ...] = ()
    repaired: str | None = None  # what `repair` did about it
