"""zstd frames: large blobs as a run of independent frames, compressed and decoded in parallel.

A zstd stream may hold several frames back to back (RFC 8878 section 3.1); any decoder
gives back their contents joined, so `zstd -dc <blob> | b3sum` still checks every blob.
Large compressible blobs are cut into frames of `FRAME` raw bytes, each with its content
size in its header. That makes both directions parallel:

- `FrameCompressor` compresses frames on a pool of zstd workers (zstd releases the GIL)
  and writes them out in order;
- `FrameScanner` walks the stored bytes block header by block header to cut out whole
  frames, and `decode_into` decodes one straight into its place in the caller's buffer, so
  frames decode side by side with no copy.

A frame that does not say its size (a raw-block frame, or a blob written as one streamed
frame) is decoded as a stream instead. `FrameDecoder` decodes any run of frames fed in
chunks, for checks that see the stored bytes as they pass (verify, copies between stores).
"""

from __future__ import annotations

import collections
import concurrent.futures
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, cast

import zstandard

# Raw bytes per frame of a large compressed blob.
FRAME = 4 << 20
# Sized frames up to this many raw bytes are decoded whole; larger ones stream.
MAX_SIZED_FRAME = 64 << 20
# Stored bytes are read this much at a time.
READ_SIZE = 1 << 20

_local = threading.local()  # each thread's zstd contexts (one operation at a time)

MAGIC = b"\x28\xb5\x2f\xfd"
_SKIPPABLE_MAGIC = 0x184D2A50  # the low 4 bits are free
_FCS_BYTES = (0, 2, 4, 8)
_DICT_ID_BYTES = (0, 1, 2, 4)
_BLOCK_HEADER = 3
_CHECKSUM = 4
_RLE = 1
_RESERVED = 3


class FrameError(Exception):
    """The stored bytes are not a whole run of zstd frames (`truncated`: they end early)."""

    def __init__(self, why: str, truncated: bool = False) -> None:
        super().__init__(why)
        self.truncated = truncated


@dataclass(frozen=True)
class FrameHeader:
    """What a frame header says: its own `size`, the `content_size` if given, a checksum."""

    size: int
    content_size: int | None
    checksum: bool


def parse_header(data: bytes | bytearray | memoryview) -> FrameHeader | None:
    """The frame header at the start of `data`; None if `data` is too short to hold it."""
    if len(data) < 5:
        return None
    if bytes(data[:4]) != MAGIC:
        raise FrameError("not a zstd frame (bad magic number)")
    descriptor = data[4]
    if descriptor & 0x08:
        raise FrameError("a reserved bit is set in a zstd frame header")
    single_segment = bool(descriptor & 0x20)
    fcs_flag = descriptor >> 6
    fcs_bytes = 1 if fcs_flag == 0 and single_segment else _FCS_BYTES[fcs_flag]
    start = 5 + (0 if single_segment else 1) + _DICT_ID_BYTES[descriptor & 0x03]
    size = start + fcs_bytes
    if len(data) < size:
        return None
    content_size = None
    if fcs_bytes:
        content_size = int.from_bytes(data[start:size], "little") + (256 if fcs_bytes == 2 else 0)
    return FrameHeader(size, content_size, bool(descriptor & 0x04))


class FrameScanner:
    """Reads stored bytes ahead and cuts out whole frames; `read()` serves what is left."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self._buffer = bytearray()
        self._pos = 0
        self._eof = False

    def _ensure(self, size: int) -> bool:
        """Whether `size` bytes are buffered from the current position (reading more if not)."""
        while len(self._buffer) - self._pos < size:
            if self._eof:
                return False
            if self._pos:
                del self._buffer[: self._pos]
                self._pos = 0
            chunk = self._raw.read(max(READ_SIZE, size - len(self._buffer)))
            if not chunk:
                self._eof = True
                return False
            self._buffer += chunk
        return True

    def peek_header(self) -> FrameHeader | None:
        """The header of the next frame, skipping skippable frames; None at the end."""
        while self._ensure(1):
            self._ensure(18)  # the longest frame header
            head = bytes(self._buffer[self._pos : self._pos + 18])  # no view: the buffer grows
            if len(head) >= 8 and int.from_bytes(head[:4], "little") & ~0xF == _SKIPPABLE_MAGIC:
                self._skip(8 + int.from_bytes(head[4:8], "little"))
                continue
            header = parse_header(head)
            if header is None:
                raise FrameError("the blob ends inside a zstd frame header", truncated=True)
            return header
        return None

    def _skip(self, size: int) -> None:
        if not self._ensure(size):
            raise FrameError("the blob ends inside a skippable frame", truncated=True)
        self._pos += size

    def take_frame(self, header: FrameHeader) -> bytes:
        """The whole frame that starts here (`header` from `peek_header`), block by block."""
        end = header.size
        # A block holds at least one byte of content in at most 4 stored bytes.
        sized = header.content_size is not None
        limit = header.size + 4 * (header.content_size or 0) + _BLOCK_HEADER + _CHECKSUM
        while True:
            if sized and end > limit:
                raise FrameError("a zstd frame has more blocks than its content size allows")
            if not self._ensure(end + _BLOCK_HEADER):
                raise FrameError("its zstd frame ends before it is whole", truncated=True)
            at = self._pos + end
            block = int.from_bytes(self._buffer[at : at + _BLOCK_HEADER], "little")
            kind, size = (block >> 1) & 0x3, block >> 3
            if kind == _RESERVED:
                raise FrameError("a zstd block has the reserved type")
            end += _BLOCK_HEADER + (1 if kind == _RLE else size)
            if block & 1:  # the last block
                break
        end += _CHECKSUM if header.checksum else 0
        if not self._ensure(end):
            raise FrameError("its zstd frame ends before it is whole", truncated=True)
        frame = bytes(self._buffer[self._pos : self._pos + end])
        self._pos += end
        return frame

    def read(self, size: int = -1) -> bytes:
        """Up to `size` stored bytes from here on (the stream decoder's source)."""
        if self._pos < len(self._buffer):
            stop = len(self._buffer) if size < 0 else self._pos + size
            data = bytes(self._buffer[self._pos : stop])
            self._pos += len(data)
            return data
        return self._raw.read(size)


def decode_into(frame: bytes, dest: memoryview) -> None:
    """Decode one whole frame into `dest`, which must be exactly its content size."""
    dctx = getattr(_local, "d", None)
    if dctx is None:
        dctx = _local.d = zstandard.ZstdDecompressor()
    reader = dctx.stream_reader(frame, read_across_frames=False)
    filled = 0
    try:
        while filled < len(dest):
            got = reader.readinto(dest[filled:])
            if not got:
                raise FrameError(f"a zstd frame holds {filled} bytes; its header says {len(dest)}")
            filled += got
        if reader.readinto(bytearray(1)):  # also reaches the end, where the checksum is checked
            raise FrameError(f"a zstd frame holds more bytes than its header says ({len(dest)})")
    except zstandard.ZstdError as exc:
        raise FrameError(f"bad zstd frame ({exc})") from None


class FrameDecoder:
    """Decodes a run of frames fed in chunks split anywhere; `finish()` checks it was whole.

    Decoded bytes go to `sink` in pieces of at most `READ_SIZE` (or, with no sink, come
    back from `feed`), so a frame that inflates far past its size (a decompression
    bomb) never sits in memory whole; past `limit` decoded bytes it stops with a
    `FrameError`. Frame and block headers are walked apart from decoding, to tell
    where the run of frames may end.
    """

    def __init__(
        self, sink: Callable[[bytes], object] | None = None, limit: int | None = None
    ) -> None:
        self._out: list[bytes] = []
        self._sink = sink if sink is not None else self._out.append
        self._limit = limit
        self.size = 0
        sink_io = cast(IO[bytes], _Counted(self))  # it has the `write` the writer needs
        self._writer = zstandard.ZstdDecompressor().stream_writer(sink_io, write_size=READ_SIZE)
        self._walker = _FrameWalker()

    def _take(self, data: bytes) -> None:
        self.size += len(data)
        if self._limit is not None and self.size > self._limit:
            raise FrameError(f"it decodes to more than the {self._limit} bytes it may hold")
        self._sink(data)

    def feed(self, chunk: bytes) -> bytes:
        """Decode one chunk; the bytes decoded, unless a sink takes them (`FrameError`)."""
        self._walker.feed(chunk)
        try:
            self._writer.write(chunk)
        except zstandard.ZstdError as exc:
            raise FrameError(f"bad zstd frame ({exc})") from None
        out, self._out[:] = b"".join(self._out), []
        return out

    def finish(self) -> None:
        """Raise `FrameError(truncated=True)` unless the bytes ended at the end of a frame."""
        self._walker.finish()


class _Counted:
    """The decompressor's output: each piece counted against the limit, then handed on."""

    def __init__(self, decoder: FrameDecoder) -> None:
        self._decoder = decoder

    def write(self, data: bytes) -> int:
        self._decoder._take(bytes(data))
        return len(data)


class _FrameWalker:
    """Follows frame, block and checksum boundaries through chunks split anywhere."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._skip = 0  # bytes of block content (or a skippable frame) still to pass
        self._state = "frame"  # expecting: "frame" header, "block" header, or "checksum"
        self._checksum = False
        self._frames = 0

    def feed(self, chunk: bytes) -> None:
        view = memoryview(chunk)
        if self._skip:
            passed = min(self._skip, len(view))
            self._skip -= passed
            view = view[passed:]
        self._buffer += view
        while self._skip == 0 and self._step():
            pass

    def _step(self) -> bool:
        """Consume one header from the buffer; False when it needs more bytes."""
        buffer = self._buffer
        if self._state == "frame":
            if len(buffer) < 8:
                if len(buffer) >= 4 and bytes(buffer[:4]) != MAGIC and not _skippable(buffer):
                    raise FrameError("not a zstd frame (bad magic number)")
                return False
            if _skippable(buffer):
                return self._consume(8, skip=int.from_bytes(buffer[4:8], "little"))
            header = parse_header(buffer)
            if header is None:
                return False
            self._checksum, self._state = header.checksum, "block"
            return self._consume(header.size)
        if self._state == "block":
            if len(buffer) < _BLOCK_HEADER:
                return False
            block = int.from_bytes(buffer[:_BLOCK_HEADER], "little")
            kind, size = (block >> 1) & 0x3, block >> 3
            if kind == _RESERVED:
                raise FrameError("a zstd block has the reserved type")
            if block & 1:
                self._state = "checksum"
            return self._consume(_BLOCK_HEADER, skip=1 if kind == _RLE else size)
        if self._checksum and len(buffer) < _CHECKSUM:
            return False
        self._frames += 1
        self._state = "frame"
        return self._consume(_CHECKSUM if self._checksum else 0)

    def _consume(self, size: int, skip: int = 0) -> bool:
        del self._buffer[:size]
        passed = min(skip, len(self._buffer))
        del self._buffer[:passed]
        self._skip = skip - passed
        return True

    def finish(self) -> None:
        if self._state != "frame" or self._skip or self._buffer or not self._frames:
            raise FrameError("its zstd frame ends before it is whole", truncated=True)


def _skippable(buffer: bytearray) -> bool:
    return len(buffer) >= 4 and int.from_bytes(buffer[:4], "little") & ~0xF == _SKIPPABLE_MAGIC


def decode_all(data: bytes, limit: int | None = None) -> bytes:
    """The contents of a whole run of frames (`FrameError` if it is not one, or if it
    decodes to more than `limit` bytes: it stops there)."""
    decoder = FrameDecoder(limit=limit)
    out = decoder.feed(data)
    decoder.finish()
    return out


class FrameCompressor:
    """Compresses what it is given as frames of `FRAME` raw bytes, written to `sink` in order.

    Frames are compressed by `threads` pool workers (0: on the calling thread), with one
    more in flight than workers, so memory stays a few frames whatever the blob's size.
    """

    def __init__(self, sink: Callable[[bytes], object], level: int, threads: int) -> None:
        self._sink = sink
        self._level = level
        self._pool = pool(threads) if threads else None
        self._window = threads + 1
        self._pending = bytearray()
        self._inflight: collections.deque[concurrent.futures.Future[bytes]] = collections.deque()
        self._frames = 0

    def write(self, view: memoryview) -> None:
        """Take more bytes (copied: the caller may reuse its buffer once this returns)."""
        while view:
            take = FRAME - len(self._pending)
            self._pending += view[:take]
            view = view[take:]
            if len(self._pending) == FRAME:
                self._submit()

    def _submit(self) -> None:
        data, self._pending = self._pending, bytearray()
        self._frames += 1
        if self._pool is None:
            self._sink(_compress(data, self._level))
            return
        self._inflight.append(self._pool.submit(_compress, data, self._level))
        while len(self._inflight) >= self._window or (self._inflight and self._inflight[0].done()):
            self._sink(self._inflight.popleft().result())

    def finish(self) -> None:
        """Compress what is left (an empty blob still gets one frame) and write it all."""
        if self._pending or not self._frames:
            self._submit()
        while self._inflight:
            self._sink(self._inflight.popleft().result())

    def abort(self) -> None:
        """Drop frames in flight (their results are discarded)."""
        for future in self._inflight:
            future.cancel()
        self._inflight.clear()
        self._pending = bytearray()


def compressor(level: int) -> zstandard.ZstdCompressor:
    """This thread's zstd compressor at `level` (checksum on), for one-shot calls.

    A zstd context serves one operation at a time: a stream (which may be interleaved
    with another in the same thread) gets a context of its own instead.
    """
    cache: dict[int, zstandard.ZstdCompressor] = _local.__dict__.setdefault("c", {})
    cctx = cache.get(level)
    if cctx is None:
        cctx = cache[level] = zstandard.ZstdCompressor(level=level, write_checksum=True)
    return cctx


def _compress(data: bytearray, level: int) -> bytes:
    """One frame, content size and checksum in it."""
    return compressor(level).compress(data)


_POOLS: dict[int, concurrent.futures.ThreadPoolExecutor] = {}
_POOLS_LOCK = threading.Lock()


def pool(threads: int) -> concurrent.futures.ThreadPoolExecutor:
    """The process's pool of `threads` zstd workers (made on first use)."""
    found = _POOLS.get(threads)
    if found is None:
        with _POOLS_LOCK:
            found = _POOLS.get(threads)
            if found is None:
                found = _POOLS[threads] = concurrent.futures.ThreadPoolExecutor(
                    threads, thread_name_prefix="stardag-zstd"
                )
    return found


if hasattr(os, "register_at_fork"):  # a forked child has none of its parent's threads
    os.register_at_fork(after_in_child=_POOLS.clear)
