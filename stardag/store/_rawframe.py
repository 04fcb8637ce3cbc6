"""Raw frames: bytes stored uncompressed, yet as one standard zstd frame (RFC 8878).

A raw frame is a 6-byte frame header, then blocks of type 0 ("raw": the bytes as
they are) of up to 128 KiB, each behind a 3-byte header; the last block says so.
There is no frame checksum: the blob's blake3 digest covers the bytes. Any zstd
decoder reads it, at the speed of a copy.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

RAW_BLOCK = 128 << 10
# Magic, frame header descriptor 0 (no content size, no checksum, no dictionary),
# window descriptor 0x38 (128 KiB, the largest raw block).
RAW_FRAME_HEADER = b"\x28\xb5\x2f\xfd\x00\x38"


def _block_header(size: int, last: bool) -> bytes:
    return (int(last) | (size << 3)).to_bytes(3, "little")  # block type 0: raw


class RawFramer:
    """Frames bytes as one zstd frame of raw (stored, uncompressed) blocks."""

    def __init__(self, sink: Callable[[Any], object]) -> None:
        self._sink = sink
        self._pending = bytearray()
        sink(RAW_FRAME_HEADER)

    def write(self, view: memoryview) -> None:
        """Frame more bytes (complete blocks go out at once, the rest waits)."""
        if self._pending:
            take = min(RAW_BLOCK - len(self._pending), len(view))
            self._pending += view[:take]
            view = view[take:]
            if len(self._pending) < RAW_BLOCK:
                return
            self._block(self._pending, last=False)
            self._pending = bytearray()
        whole = len(view) - len(view) % RAW_BLOCK
        for start in range(0, whole, RAW_BLOCK):
            self._block(view[start : start + RAW_BLOCK], last=False)
        self._pending += view[whole:]

    def finish(self) -> None:
        """Write the last block (possibly empty), closing the frame."""
        self._block(self._pending, last=True)
        self._pending = bytearray()

    def _block(self, data: Any, last: bool) -> None:
        self._sink(_block_header(len(data), last))
        self._sink(data)


def raw_frame(data: memoryview) -> bytes:
    """`data` as one zstd frame of raw blocks."""
    out = bytearray()
    framer = RawFramer(out.extend)
    framer.write(data)
    framer.finish()
    return bytes(out)


def stored_size_if_raw(size_raw: int) -> int:
    """The size of a raw-block frame holding `size_raw` bytes."""
    blocks = size_raw // RAW_BLOCK + 1
    return len(RAW_FRAME_HEADER) + 3 * blocks + size_raw
