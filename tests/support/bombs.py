"""Decompression bombs for tests: tiny zstd frames that inflate to many zero bytes."""

from __future__ import annotations


def bomb(size: int = 2 << 30) -> bytes:
    """One zstd frame of RLE blocks: `size` zero bytes in 4 stored bytes per 128 KiB."""
    block = 128 << 10
    header = b"\x28\xb5\x2f\xfd\x00\x38"  # no content size, no checksum, 128 KiB window
    rle = (((block << 3) | (1 << 1)).to_bytes(3, "little") + b"\x00") * (size // block - 1)
    return header + rle + ((block << 3) | (1 << 1) | 1).to_bytes(3, "little") + b"\x00"
