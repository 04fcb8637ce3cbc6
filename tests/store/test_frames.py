"""zstd frames: large blobs as runs of sized frames, decoded in parallel, old layouts still read."""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import zstandard
from blake3 import blake3
from hypothesis import given, settings
from hypothesis import strategies as st

import stardag as sd
from stardag.maintenance._verify import Kind, verify
from stardag.store._blob import Compression
from stardag.store._frames import (
    FRAME,
    FrameDecoder,
    FrameError,
    FrameScanner,
    decode_all,
    parse_header,
)
from stardag.store._rawframe import raw_frame
from stardag.store._store import Store, blob_path

# About 2.5 frames of compressible bytes: a short last frame, and frames of every kind of fit.
DATA = np.random.default_rng(1).integers(0, 200, (5 * FRAME // 2) // 8, dtype=np.int64).tobytes()


def _frames_of(stored: bytes) -> list[tuple[int, int | None]]:
    """(stored size, content size) of each frame in a stored blob."""
    scanner = FrameScanner(io.BytesIO(stored))
    frames = []
    while (header := scanner.peek_header()) is not None:
        frames.append((len(scanner.take_frame(header)), header.content_size))
    return frames


def _stored(store: Store, digest: str) -> bytes:
    return store.backend.read_bytes(blob_path(digest))


def _put_stored(store: Store, stored: bytes) -> str:
    """Put hand-made stored bytes under the digest of what they decode to."""
    digest = blake3(decode_all(stored)).hexdigest()
    store.backend.put_bytes(blob_path(digest), stored)
    return digest


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(str(tmp_path / "store"), compression=Compression(level=1, threads=2))


def test_a_large_compressible_blob_is_a_run_of_sized_frames(store: Store) -> None:
    """Frames of FRAME raw bytes (the last shorter), each saying its size."""
    info = store.put_bytes(DATA)
    assert info.compression == "zstd"
    sizes = [size for _, size in _frames_of(_stored(store, info.digest))]
    assert sizes == [FRAME, FRAME, len(DATA) - 2 * FRAME]


@pytest.mark.skipif(shutil.which("zstd") is None, reason="the zstd command is not installed")
def test_the_zstd_command_decodes_a_multi_frame_blob(store: Store, tmp_path: Path) -> None:
    """`zstd -dc <blob>` gives back the bytes whose blake3 names the blob."""
    info = store.put_bytes(DATA)
    path = tmp_path / "store" / blob_path(info.digest)
    out = subprocess.run(["zstd", "-dc", str(path)], check=True, capture_output=True).stdout
    assert blake3(out).hexdigest() == info.digest


@pytest.mark.parametrize("threads", [0, 2])
@settings(max_examples=20, deadline=None)
@given(sizes=st.lists(st.integers(1, 3 * FRAME), min_size=1, max_size=6))
def test_reads_of_any_size_give_back_the_bytes(threads: int, sizes: list[int]) -> None:
    """However the caller's reads fall across frames, the bytes come back in order, verified."""
    store = Store(f"memory://frames-{threads}", compression=Compression(level=1, threads=threads))
    info = store.put_bytes(DATA)  # the same blob each time: a put of what is there is a no-op
    out = bytearray()
    with store.open_blob(info.digest) as reader:
        for size in sizes:
            buffer = bytearray(size)
            out += buffer[: reader.readinto(buffer)]
        out += reader.read()
    assert out == DATA


def test_a_single_streamed_frame_without_a_size_still_loads(store: Store) -> None:
    """Blobs written as one streamed frame (no content size) decode as a stream."""
    sink = io.BytesIO()
    with zstandard.ZstdCompressor(write_checksum=True).stream_writer(sink, closefd=False) as z:
        z.write(DATA)
    digest = _put_stored(store, sink.getvalue())
    assert _frames_of(sink.getvalue())[0][1] is None
    with store.open_blob(digest) as reader:
        assert reader.read() == DATA


def test_sized_frames_then_a_raw_frame_switch_to_streaming(store: Store) -> None:
    """A run that goes from sized frames to one without a size decodes all of it."""
    cctx = zstandard.ZstdCompressor(write_checksum=True)
    head, tail = DATA[:FRAME], DATA[FRAME:]
    stored = cctx.compress(head) + raw_frame(memoryview(tail))
    digest = _put_stored(store, stored)
    with store.open_blob(digest) as reader:
        assert reader.read() == DATA
    assert store.read_blob(digest) == DATA


def test_a_skippable_frame_is_skipped(store: Store) -> None:
    """zstd's skippable frames (metadata) between frames carry no bytes of the blob."""
    cctx = zstandard.ZstdCompressor(write_checksum=True)
    note = b"n" * (2 << 20)  # past one read: the scanner's buffer grows while skipping
    skippable = (0x184D2A53).to_bytes(4, "little") + len(note).to_bytes(4, "little") + note
    stored = cctx.compress(DATA[:FRAME]) + skippable + cctx.compress(DATA[FRAME:])
    digest = _put_stored(store, stored)
    with store.open_blob(digest) as reader:
        assert reader.read() == DATA


def test_a_flipped_byte_in_a_later_frame_fails_the_load(store: Store) -> None:
    """Damage in the middle of a parallel decode raises CorruptBlobError, naming the blob."""
    info = store.put_bytes(DATA)
    path = Path(store.backend.root) / blob_path(info.digest)  # type: ignore[attr-defined]  # a local store
    stored = bytearray(path.read_bytes())
    stored[len(stored) * 3 // 4] ^= 0x40
    path.write_bytes(bytes(stored))
    with store.open_blob(info.digest) as reader, pytest.raises(sd.CorruptBlobError) as caught:
        reader.read()
    assert caught.value.digest == info.digest
    assert [f.kind for f in verify(store, None).findings] == [Kind.CORRUPT_FRAME]


def test_a_blob_cut_inside_a_frame_is_truncated(store: Store) -> None:
    """Cut mid-frame: the load fails, and verify says truncated-frame."""
    info = store.put_bytes(DATA)
    stored = _stored(store, info.digest)
    first = _frames_of(stored)[0][0]
    store.backend.put_bytes(blob_path(info.digest), stored[: first + 100])
    with store.open_blob(info.digest) as reader, pytest.raises(sd.CorruptBlobError, match="ends"):
        reader.read()
    assert [f.kind for f in verify(store, None).findings] == [Kind.TRUNCATED_FRAME]


def test_a_blob_cut_between_frames_is_a_digest_mismatch(store: Store) -> None:
    """Whole frames but not all of them: the bytes hash to another digest."""
    info = store.put_bytes(DATA)
    stored = _stored(store, info.digest)
    store.backend.put_bytes(blob_path(info.digest), stored[: _frames_of(stored)[0][0]])
    with store.open_blob(info.digest) as reader, pytest.raises(sd.CorruptBlobError, match="hash"):
        reader.read()
    assert [f.kind for f in verify(store, None).findings] == [Kind.DIGEST_MISMATCH]


def test_bytes_after_the_last_frame_are_corrupt(store: Store) -> None:
    """Trailing bytes that are not a frame fail the load, verify and a copy."""
    info = store.put_bytes(DATA)
    store.backend.put_bytes(blob_path(info.digest), _stored(store, info.digest) + b"junk!")
    with store.open_blob(info.digest) as reader, pytest.raises(sd.CorruptBlobError, match="magic"):
        reader.read()
    assert [f.kind for f in verify(store, None).findings] == [Kind.CORRUPT_FRAME]


def test_a_frame_longer_than_its_header_says_is_corrupt(store: Store) -> None:
    """A content size that lies is caught by zstd before any byte is trusted."""
    frame = bytearray(zstandard.ZstdCompressor(write_checksum=True).compress(DATA[:1000]))
    header = parse_header(frame)
    assert header is not None and header.content_size == 1000
    frame[header.size - 2 : header.size] = (900 - 256).to_bytes(2, "little")  # 2-byte size field
    digest = blake3(DATA[:1000]).hexdigest()
    store.backend.put_bytes(blob_path(digest), bytes(frame))
    with store.open_blob(digest) as reader, pytest.raises(sd.CorruptBlobError):
        reader.read()


def test_a_frame_with_more_blocks_than_its_size_allows_is_corrupt(store: Store) -> None:
    """Blocks past what the content size allows stop the scan before it buffers them all."""
    header = b"\x28\xb5\x2f\xfd\x20\x0a"  # single segment, content size 10
    one_byte_block = (1 << 3).to_bytes(3, "little") + b"x"  # raw, not last
    frame = header + one_byte_block * 20 + (1 | (1 << 3)).to_bytes(3, "little") + b"x"
    digest = blake3(b"x" * 10).hexdigest()
    store.backend.put_bytes(blob_path(digest), frame)
    with store.open_blob(digest) as reader, pytest.raises(sd.CorruptBlobError, match="blocks"):
        reader.read()


def test_headers_with_bad_magic_or_reserved_bits_are_refused() -> None:
    """Not a frame at all, or a header with a reserved bit set: FrameError."""
    with pytest.raises(FrameError, match="magic"):
        parse_header(b"PK\x03\x04\x00\x00")
    with pytest.raises(FrameError, match="reserved"):
        parse_header(b"\x28\xb5\x2f\xfd\x08\x00")
    assert parse_header(b"\x28\xb5\x2f") is None


def test_the_chunked_decoder_needs_whole_frames() -> None:
    """Fed in any split, two frames decode; a cut or empty input is truncated."""
    cctx = zstandard.ZstdCompressor()
    stored = cctx.compress(b"a" * 5000) + cctx.compress(b"b" * 7000)
    decoder = FrameDecoder()
    out = b"".join(decoder.feed(stored[i : i + 7]) for i in range(0, len(stored), 7))
    decoder.finish()
    assert out == b"a" * 5000 + b"b" * 7000
    for cut in (b"", stored[:-3]):
        with pytest.raises(FrameError) as caught:
            decode_all(cut)
        assert caught.value.truncated


def test_a_numpy_output_round_trips_with_inline_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    """With STARDAG_ZSTD_THREADS=0 frames are written and decoded on the calling thread."""
    monkeypatch.setenv("STARDAG_ZSTD_THREADS", "0")

    @sd.task
    def ints(n: int) -> np.ndarray:
        return np.arange(n, dtype=np.int64) % 1000

    task = ints(n=3 * FRAME // 8 + 5)
    sd.build(task)
    assert np.array_equal(task.load(), np.arange(3 * FRAME // 8 + 5, dtype=np.int64) % 1000)
