"""Blobs: one output's bytes, named by their blake3, framed as zstd, written and read as streams.

Every blob is a standard zstd stream (RFC 8878), so `zstd -dc <blob> | b3sum` checks any
of them. How it holds the bytes depends on a sample of them:

- compressible bytes are compressed at `STARDAG_ZSTD_LEVEL` (default 1), frame checksum
  on; past `SMALL_BLOB` as a run of frames of `_frames.FRAME` bytes, each saying its size;
- bytes whose sample does not shrink by `MIN_SAVING` (float arrays, images, already
  compressed data) go in one frame of *raw blocks*: a 3-byte header per 128 KiB and no
  checksum (the blake3 digest covers them), so storing them costs a copy, not a compression.

The record's `compression` says which (`"zstd"` or `"none"`). The digest is always blake3
of the raw bytes, so the framing can change without changing any name.

Writing streams: a `BlobWriter` hashes and frames each chunk as it arrives, into a staged
file, holding at most `SMALL_BLOB` bytes of its own (plus a few frames in flight). Large
blobs are compressed frame by frame by `STARDAG_ZSTD_THREADS` zstd workers (default: one
per core, up to 4) while the writing thread hashes. Reading streams too: a
`VerifyingReader` decodes sized frames on the same workers straight into the caller's
buffer (other frames as a stream), hashes the bytes in order, and raises
`CorruptBlobError` at the end if the digest differs.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import functools
import io
import os
import threading
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, cast

import zstandard

from stardag import _hashing
from stardag._errors import CorruptBlobError, StardagError
from stardag.store import _frames
from stardag.store._frames import (
    FRAME,
    MAX_SIZED_FRAME,
    FrameCompressor,
    FrameDecoder,
    FrameError,
    FrameScanner,
    compressor,
    decode_into,
)
from stardag.store._rawframe import RawFramer, raw_frame, stored_size_if_raw

if TYPE_CHECKING:
    from stardag.store._backends import Backend, Staged

# Bytes up to this size are buffered and framed in one shot; past it the writer streams.
SMALL_BLOB = 4 << 20
# Large writes are hashed and compressed in steps of this size (cache-sized, pipelined).
STEP = 1 << 20
# One read decompresses at most this much into the caller's buffer.
MAX_READ = 64 << 20
# A blob may decode to its claimed raw size plus this much before reading stops with a
# CorruptBlobError (a decompression bomb inflates far past the size its record claims).
SIZE_MARGIN = 64 << 10
# Compress only when a sample shrinks by at least this fraction.
MIN_SAVING = 0.10
SAMPLE_SLICES = 4
SAMPLE_SLICE = 64 << 10
COMPRESSED = "zstd"
UNCOMPRESSED = "none"


@dataclass(frozen=True)
class Compression:
    """How new blobs are compressed: zstd `level`, and `threads` zstd workers (0: inline)."""

    level: int = 1
    threads: int = 0

    @classmethod
    def from_env(cls) -> Compression:
        """`STARDAG_ZSTD_LEVEL` (default 1) and `STARDAG_ZSTD_THREADS` (default: cores, up to 4).

        Read when asked, unless pinned in this context (`PINNED_COMPRESSION`: one build).
        """
        pinned = PINNED_COMPRESSION.get()
        if pinned is not None:
            return pinned
        environ = os.environ
        return _compression(
            environ.get("STARDAG_ZSTD_LEVEL", ""), environ.get("STARDAG_ZSTD_THREADS", "")
        )


PINNED_COMPRESSION: ContextVar[Compression | None] = ContextVar("stardag_compression", default=None)


@functools.lru_cache(maxsize=16)
def _compression(level: str, threads: str) -> Compression:
    """The settings these two variables' values mean, worked out once (every output asks)."""
    return Compression(
        _env_int("STARDAG_ZSTD_LEVEL", level, 1),
        _env_int("STARDAG_ZSTD_THREADS", threads, default_threads()),
    )


def default_threads() -> int:
    """zstd workers for large blobs: one per core up to 4; none on a single core."""
    cores = os.cpu_count() or 1
    return 0 if cores < 2 else min(cores, 4)


def _env_int(name: str, value: str, default: int) -> int:
    raw = value.strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise StardagError(f"{name} must be an integer, not {raw!r}") from None


def _byte_view(data: Any) -> memoryview:
    view = data if isinstance(data, memoryview) else memoryview(data)
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")
    return view


def compresses(pieces: list[memoryview], settings: Compression) -> bool:
    """Whether a sample spread over `pieces` shrinks by at least `MIN_SAVING`."""
    sample = _sample(pieces)
    total = sum(len(s) for s in sample)
    if total == 0:
        return False
    cctx = compressor(settings.level)
    shrunk = sum(len(cctx.compress(s)) for s in sample)
    return shrunk <= (1 - MIN_SAVING) * total


def _sample(pieces: list[memoryview]) -> list[memoryview]:
    total = sum(len(p) for p in pieces)
    if total <= SAMPLE_SLICES * SAMPLE_SLICE:
        return [p for p in pieces if len(p)]
    slices = []
    for k in range(SAMPLE_SLICES):
        offset = k * (total - SAMPLE_SLICE) // (SAMPLE_SLICES - 1)
        for piece in pieces:
            if offset < len(piece):
                slices.append(piece[offset : offset + SAMPLE_SLICE])
                break
            offset -= len(piece)
    return slices


class _Hashing:
    """Feeds a hasher in order; with `overlap`, on a helper thread while the caller works on.

    blake3 and zstd both release the GIL, so hashing one step while the next is
    (de)compressed or written uses a second core. Leaving the block waits for the last
    update, so no buffer is used after the caller gets it back.
    """

    def __init__(self, hasher: Any, overlap: bool) -> None:
        self._hasher = hasher
        self._pool = _hash_pool() if overlap else None
        self._pending: concurrent.futures.Future[None] | None = None

    def __enter__(self) -> _Hashing:
        return self

    def update(self, data: memoryview) -> None:
        if self._pool is None:
            self._hasher.update(data)
            return
        if self._pending is not None:
            self._pending.result()
        self._pending = self._pool.submit(self._hasher.update, data)

    def __exit__(self, *exc_info: object) -> None:
        if self._pending is not None:
            self._pending.result()


_POOL: list[concurrent.futures.ThreadPoolExecutor] = []
_POOL_LOCK = threading.Lock()


def _hash_pool() -> concurrent.futures.ThreadPoolExecutor:
    if not _POOL:
        with _POOL_LOCK:
            if not _POOL:
                _POOL.append(
                    concurrent.futures.ThreadPoolExecutor(4, thread_name_prefix="stardag-hash")
                )
    return _POOL[0]


if hasattr(os, "register_at_fork"):  # a forked child has none of its parent's threads
    os.register_at_fork(after_in_child=_POOL.clear)


@dataclass(frozen=True)
class BlobInfo:
    """What a blob write produced (`inline`: the raw bytes, when kept in the record)."""

    digest: str
    size_raw: int
    size_stored: int
    compression: str = COMPRESSED
    inline: bytes | None = None


class BlobWriter(io.RawIOBase):
    """A binary sink that hashes and frames what is written, then publishes one blob.

    Up to `SMALL_BLOB` bytes are buffered and framed in one shot; past that the
    writer streams into a staged file, never holding a second whole copy.
    `finish()` publishes under the digest; `abort()` leaves nothing. Writes of
    more than `inline_max` bytes in total become a blob; smaller ones are returned
    in `BlobInfo.inline` for the caller to keep elsewhere.
    """

    def __init__(
        self,
        backend: Backend,
        path_of: Callable[[str], str],
        settings: Compression,
        inline_max: int = -1,
        guard: Callable[[], contextlib.AbstractContextManager[None]] = contextlib.nullcontext,
    ) -> None:
        super().__init__()
        self.backend = backend
        self._guard = guard  # the store's shared gc lock (see `_lock`)
        self._path_of = path_of
        self._settings = settings
        self._inline_max = inline_max
        self._hasher = _hashing.new_hasher()
        self._buffer = bytearray()
        self._size = 0
        self._staged: Staged | None = None
        self._encode: Callable[[memoryview], object] | None = None
        self._close_frame: Callable[[], object] | None = None
        self._drop: Callable[[], object] = lambda: None
        self._compression = UNCOMPRESSED
        self._stored = 0

    def writable(self) -> bool:
        return True

    def tell(self) -> int:
        """How many bytes were written (formats like Parquet record offsets)."""
        return self._size

    def write(self, data: Any, /) -> int:
        view = _byte_view(data)
        size = len(view)
        if self._encode is None and len(self._buffer) + size <= SMALL_BLOB:
            self._hasher.update(view)
            self._buffer += view
        else:
            if self._encode is None:
                self._start_streaming(view)
            encode = self._encode
            assert encode is not None
            with _Hashing(self._hasher, overlap=size > STEP) as hashing:
                for start in range(0, size, STEP):
                    step = view[start : start + STEP]
                    hashing.update(step)  # hashed while the step is encoded
                    encode(step)
        self._size += size
        return size

    def _start_streaming(self, upcoming: memoryview) -> None:
        buffered = memoryview(self._buffer)
        self._staged = self.backend.stage()
        if compresses([buffered, upcoming], self._settings):
            self._compression = COMPRESSED
            frames = FrameCompressor(self._put, self._settings.level, self._settings.threads)
            self._encode, self._close_frame, self._drop = frames.write, frames.finish, frames.abort
        else:
            self._compression = UNCOMPRESSED
            framer = RawFramer(self._put)
            self._encode, self._close_frame = framer.write, framer.finish
        self._encode(buffered)
        self._buffer = bytearray()

    def _put(self, data: Any) -> None:
        assert self._staged is not None
        self._stored += len(data)
        self._staged.write(data)

    def finish(self) -> BlobInfo:
        """Publish the blob under its digest (once: an existing blob is kept, and touched)."""
        digest = self._hasher.hexdigest()
        if self._close_frame is None:
            return self._finish_small(digest)
        self._close_frame()
        staged, self._staged = self._staged, None
        assert staged is not None
        path = self._path_of(digest)
        with self._guard():
            if self.backend.exists(path):
                staged.discard()
                return self._existing(digest, path)
        staged.publish(path)
        return BlobInfo(digest, self._size, self._stored, self._compression)

    def _finish_small(self, digest: str) -> BlobInfo:
        data = bytes(self._buffer)
        self._buffer = bytearray()
        if self._size <= self._inline_max:
            return BlobInfo(digest, self._size, 0, UNCOMPRESSED, inline=data)
        path = self._path_of(digest)
        with self._guard():
            if self.backend.exists(path):
                return self._existing(digest, path)
        view = memoryview(data)
        if compresses([view], self._settings):
            stored, compression = compressor(self._settings.level).compress(data), COMPRESSED
        else:
            stored, compression = raw_frame(view), UNCOMPRESSED
        self.backend.put_bytes(path, stored)
        return BlobInfo(digest, self._size, len(stored), compression)

    def _existing(self, digest: str, path: str) -> BlobInfo:
        self.backend.touch(path)  # a reuse counts as a write for gc's grace period
        size = self.backend.stat(path).size
        compression = UNCOMPRESSED if size == stored_size_if_raw(self._size) else COMPRESSED
        return BlobInfo(digest, self._size, size, compression)

    def abort(self) -> None:
        """Drop everything written; no blob appears."""
        self._buffer = bytearray()
        self._drop()
        if self._staged is not None:
            self._staged.discard()
            self._staged = None


class VerifyingReader(io.RawIOBase):
    """Decodes a blob into the caller's buffers while hashing them.

    Frames that say their size are decoded whole, side by side on the zstd workers, each
    straight into its place in the caller's buffer; the rest of a blob (a raw-block frame,
    a blob written as one streamed frame) is decoded as a stream. Either way the bytes
    are hashed in order, and at the end a digest mismatch raises `CorruptBlobError`;
    `verify()` reads whatever is left and checks.
    """

    def __init__(
        self,
        raw: IO[bytes],
        digest: str,
        task_id: str | None = None,
        threads: int = 0,
        size: int | None = None,
    ) -> None:
        super().__init__()
        self._limit = limit_for(size)  # stop past the claimed size: a decompression bomb
        self._raw = raw
        self._digest = digest
        self._task_id = task_id
        self._hasher = _hashing.new_hasher()
        self._scanner = FrameScanner(raw)
        self._stream: Any = None  # a zstd stream reader, from the first frame without a size
        self._threads = threads  # zstd workers decoding sized frames (0: this thread)
        self._leftover = memoryview(b"")  # the decoded tail of a frame the caller had no room for
        self._done = False
        self._decoded = 0  # bytes decoded so far (the caller's and the leftover)
        self.size = 0

    def readable(self) -> bool:
        return True

    def _count(self, size: int) -> None:
        self._decoded += size
        if self._limit is not None and self._decoded > self._limit:
            raise FrameError(f"it decodes to more than the {self._limit} bytes it may hold")

    def readinto(self, buffer: Any) -> int:
        if self._done:
            return 0
        view = _byte_view(buffer)[:MAX_READ]
        try:
            filled = self._hand_over(self._leftover, view)
            if self._stream is None and filled < len(view):
                filled += self._decode_frames(view[filled:])
            if self._stream is not None and filled < len(view):
                filled += self._decode_stream(view[filled:])
        except FrameError as exc:
            raise corrupt(self._digest, self._task_id, str(exc)) from None
        if not filled:
            self._check()
        self.size += filled
        return filled

    def _hand_over(self, decoded: memoryview, view: memoryview) -> int:
        """Copy what fits of `decoded` into `view`; keep the rest for the next read."""
        size = min(len(view), len(decoded))
        view[:size] = decoded[:size]
        self._leftover = decoded[size:]
        return size

    def _decode_frames(self, view: memoryview) -> int:
        """Decode whole sized frames into `view`; the last may overflow into `_leftover`."""
        filled = 0
        overflow = memoryview(b"")
        with _InOrder(self._hasher, self._threads) as decoding:
            while filled < len(view) and not overflow:
                header = self._scanner.peek_header()
                if header is None:
                    break
                size = header.content_size
                if size is None or size > MAX_SIZED_FRAME:
                    self._stream = self._open_stream()
                    break
                self._count(size)  # before a byte of it is decoded
                frame = self._scanner.take_frame(header)
                if size > len(view) - filled:
                    overflow = memoryview(bytearray(size))
                    decoding.submit(frame, overflow)
                else:
                    decoding.submit(frame, view[filled : filled + size])
                    filled += size
        if overflow:  # decoded and hashed by now: hand over what fits
            filled += self._hand_over(overflow, view[filled:])
        return filled

    def _open_stream(self) -> Any:
        dctx = zstandard.ZstdDecompressor()
        source = cast(IO[bytes], self._scanner)  # it has the `read` a stream reader needs
        return dctx.stream_reader(source, read_size=STEP, read_across_frames=True)

    def _decode_stream(self, view: memoryview) -> int:
        filled = 0
        with _Hashing(self._hasher, overlap=len(view) > STEP) as hashing:
            while filled < len(view):
                step = view[filled : filled + STEP]
                try:
                    got = int(self._stream.readinto(step))
                except zstandard.ZstdError as exc:
                    raise FrameError(f"bad zstd frame ({exc})") from None
                if not got:
                    break
                self._count(got)
                hashing.update(step[:got])
                filled += got
        return filled

    def _check(self) -> None:
        self._done = True
        if self._hasher.hexdigest() != self._digest:
            raise corrupt(self._digest, self._task_id, "its bytes hash to another digest")

    def verify(self) -> None:
        """Read to the end and check the digest (`CorruptBlobError` on a mismatch)."""
        scratch = bytearray(STEP)
        while self.readinto(scratch):
            if len(scratch) == STEP:
                scratch = bytearray(4 * FRAME)  # room for whole frames: they decode in parallel

    def close(self) -> None:
        if not self.closed:
            if self._stream is not None:
                self._stream.close()
            self._raw.close()
        super().close()


class _InOrder:
    """Decodes frames on the zstd workers and hashes them in order as each one lands.

    Leaving the block waits for every frame in flight, even after an error, so no worker
    writes into a buffer after the caller gets it back.
    """

    def __init__(self, hasher: Any, threads: int) -> None:
        self._hasher = hasher
        self._pool = _frames.pool(threads) if threads else None
        self._window = 2 * max(threads, 1)
        self._inflight: collections.deque[tuple[concurrent.futures.Future[None], memoryview]] = (
            collections.deque()
        )

    def __enter__(self) -> _InOrder:
        return self

    def submit(self, frame: bytes, dest: memoryview) -> None:
        if self._pool is None:
            decode_into(frame, dest)
            self._hasher.update(dest)
            return
        self._inflight.append((self._pool.submit(decode_into, frame, dest), dest))
        while len(self._inflight) > self._window:
            self._land()

    def _land(self) -> None:
        future, dest = self._inflight.popleft()
        future.result()
        self._hasher.update(dest)  # while the workers decode the frames behind it

    def __exit__(self, exc_type: object, *exc_info: object) -> None:
        try:
            while self._inflight and exc_type is None:
                self._land()
        finally:  # after an error too: the frames still in flight write into the caller's buffer
            concurrent.futures.wait([future for future, _ in self._inflight])


class VerifyingCopier:
    """Checks a blob's stored bytes as they stream past: `feed()` chunks, then `check()`."""

    def __init__(self, digest: str, source: str, size: int | None = None) -> None:
        self._digest = digest
        self._source = source
        self._hasher = _hashing.new_hasher()
        self._decoder = FrameDecoder(self._hasher.update, limit_for(size))

    def feed(self, chunk: bytes) -> None:
        """Decode and hash one chunk of the stored frames."""
        try:
            self._decoder.feed(chunk)
        except FrameError as exc:
            raise self._corrupt(str(exc)) from None

    def check(self) -> None:
        """Raise `CorruptBlobError` unless the frames were whole and hashed to the digest."""
        try:
            self._decoder.finish()
        except FrameError as exc:
            raise self._corrupt(str(exc)) from None
        if self._hasher.hexdigest() != self._digest:
            raise self._corrupt("its bytes hash to another digest")

    def _corrupt(self, why: str) -> CorruptBlobError:
        return corrupt(self._digest, None, f"{why}, in {self._source}")


def limit_for(size: int | None) -> int | None:
    """How many bytes a blob claimed to hold `size` may decode to before reading stops."""
    return None if size is None else size + SIZE_MARGIN


def corrupt(digest: str, task_id: str | None, why: str) -> CorruptBlobError:
    """The error for a blob whose bytes do not match its digest."""
    owner = f" (output of task {task_id})" if task_id else ""
    return CorruptBlobError(
        f"blob {digest}{owner} is corrupt: {why}. Run `stardag verify --repair` and rebuild.",
        digest=digest,
        task_id=task_id,
        why=why,
    )
