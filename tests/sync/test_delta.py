"""Delta transfer of large files: rebuilt files are exact, little crosses the wire, damage is caught,
an interrupted transfer resumes with only what is missing."""

from __future__ import annotations

import io
import os
import random
import tracemalloc
from typing import Callable, Union

import msgspec
import pytest

from mutagen_actors.actors.sync import chunking
from mutagen_actors.actors.sync.chunking import (
    CHUNKER_ID,
    Signature,
    SignatureMismatch,
    average_chunk_size,
    chunker_parameters,
    signature,
)
from mutagen_actors.actors.sync.delta import (
    MAX_LITERAL,
    Copy,
    CorruptBaseChunk,
    CorruptLiteral,
    DeltaError,
    DigestMismatch,
    Literal,
    MalformedDelta,
    Operation,
    Start,
    apply_delta,
    delta,
    literal_bytes,
    resume_point,
    skip_prefix,
)
from mutagen_actors.actors.sync.hashing import digest_bytes
from mutagen_actors.actors.sync.settings import HashAlgorithm

from .killed_child import kill_9_once_it_says

MiB = 1 << 20


def noise(size: int, seed: int = 1) -> bytes:
    return random.Random(seed).randbytes(size)


def write(path, data: bytes) -> str:
    with open(path, "wb") as handle:
        handle.write(data)
    return str(path)


def read(path) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


def wire_size(value) -> int:
    return len(msgspec.msgpack.encode(value))


def transfer(tmp_path, old: bytes, new: bytes, algorithm=HashAlgorithm.XXH128, **sign):
    """Sign ``old`` as the receiver, delta ``new`` as the sender, rebuild: (ops, out path, signature)."""
    base = write(tmp_path / "base", old)
    source = write(tmp_path / "source", new)
    out = str(tmp_path / "out")
    sig = signature(base, **sign)
    ops = list(delta(sig, source))
    size = apply_delta(
        base, ops, out, signature=sig, expected_digest=digest_bytes(new, algorithm), hash_algorithm=algorithm
    )
    assert size == len(new)
    return ops, out, sig


BASE = noise(3 * MiB, seed=7)
Edit = Callable[[bytes], bytes]
EDITS: list[tuple[str, bytes, Union[bytes, Edit]]] = [
    ("edit in the middle", BASE, lambda b: b[: len(b) // 2] + b"EDITED!" + b[len(b) // 2 + 7 :]),
    ("insert", BASE, lambda b: b[:1_000_003] + noise(1000, 2) + b[1_000_003:]),
    ("delete", BASE, lambda b: b[:1_500_001] + b[1_600_001:]),
    ("truncate", BASE, lambda b: b[:1_234_567]),
    ("append", BASE, lambda b: b + noise(70_000, 3)),
    ("prepend", BASE, lambda b: noise(5_000, 4) + b),
    ("empty base", b"", BASE),
    ("empty target", BASE, b""),
    ("both empty", b"", b""),
    ("identical", BASE, lambda b: b),
    ("unrelated random binary", BASE, noise(2 * MiB + 17, 5)),
    ("blocks moved around", BASE, lambda b: b[2 * MiB :] + b[MiB : 2 * MiB] + b[: MiB]),
    ("repetitive content", b"\0" * MiB, b"\0" * (MiB + 4096) + b"x"),
    ("text with scattered edits", b"line of source code\n" * 100_000,
     lambda b: b.replace(b"line of source code\n" * 5, b"changed line\n", 7)),
]


@pytest.mark.parametrize("name,old,edit", EDITS, ids=[e[0] for e in EDITS])
def test_round_trip_rebuilds_exactly(tmp_path, name, old, edit):
    new = edit(old) if callable(edit) else edit
    ops, out, _ = transfer(tmp_path, old, new)
    assert digest_bytes(read(out), HashAlgorithm.XXH128) == digest_bytes(new, HashAlgorithm.XXH128)
    assert read(out) == new
    assert isinstance(ops[0], Start) and not any(isinstance(op, Start) for op in ops[1:])
    assert all(len(op.data) <= MAX_LITERAL for op in ops if isinstance(op, Literal))


# How many literal bytes an edit may cost: the changed bytes plus the chunks they touch.
MAX_CHUNK = 32 << 10  # max chunk size at the 8 KiB average


@pytest.mark.parametrize(
    "name,edit,changed",
    [
        ("identical", lambda b: b, 0),
        ("1-byte change", lambda b: b[:2_000_000] + bytes([b[2_000_000] ^ 1]) + b[2_000_001:], 1),
        ("append", lambda b: b + noise(70_000, 3), 70_000),
        ("prepend", lambda b: noise(5_000, 4) + b, 5_000),
        ("delete", lambda b: b[:1_500_001] + b[1_600_001:], 0),
        ("truncate", lambda b: b[:1_234_567], 0),
    ],
)
def test_literal_bytes_follow_the_change(tmp_path, name, edit, changed):
    ops, _, _ = transfer(tmp_path, BASE, edit(BASE))
    assert changed <= literal_bytes(ops) <= changed + 2 * MAX_CHUNK


def test_identical_file_is_one_copy(tmp_path):
    ops, _, sig = transfer(tmp_path, BASE, BASE)
    assert ops[1:] == [Copy(0, len(sig))]


@pytest.mark.parametrize("algorithm", list(HashAlgorithm))
def test_every_session_hash_verifies_the_result(tmp_path, algorithm):
    new = BASE[:100] + b"#" + BASE[101:]
    _, out, _ = transfer(tmp_path, BASE, new, algorithm)
    assert read(out) == new


def test_one_byte_in_20_mib_sends_under_one_percent(tmp_path):
    old = noise(20 * MiB, seed=11)
    new = bytearray(old)
    new[13 * MiB + 12345] ^= 0xFF
    new = bytes(new)
    ops, out, sig = transfer(tmp_path, old, new)
    assert read(out) == new
    on_the_wire = wire_size(sig) + sum(wire_size(op) for op in ops)
    assert literal_bytes(ops) < 0.01 * len(new) / 10  # one or two chunks, not 1% of the file
    assert on_the_wire < 0.01 * len(new)


def test_delta_streams_with_bounded_memory(tmp_path):
    old = noise(16 * MiB, seed=12)
    base = write(tmp_path / "base", old)
    source = write(tmp_path / "source", noise(16 * MiB, seed=13))  # all literal: the worst case
    sig = signature(base)
    tracemalloc.start()
    try:
        count = 0
        for op in delta(sig, source):
            count += 1
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count > 16 * MiB // MAX_LITERAL
    assert peak < 2 * MiB


def test_file_objects_work_like_paths():
    new = BASE[:5000] + b"in memory" + BASE[5000:]
    sig = signature(io.BytesIO(BASE))
    ops = list(delta(sig, io.BytesIO(new)))
    out = io.BytesIO()
    apply_delta(
        io.BytesIO(BASE), ops, out, signature=sig,
        expected_digest=digest_bytes(new, HashAlgorithm.SHA1), hash_algorithm=HashAlgorithm.SHA1,
    )
    assert out.getvalue() == new


def test_operations_and_signature_survive_msgpack(tmp_path):
    new = BASE[:10] + b"wire" + BASE[10:]
    sig = signature(write(tmp_path / "base", BASE))
    ops = list(delta(sig, io.BytesIO(new)))
    decoded_sig = msgspec.msgpack.decode(msgspec.msgpack.encode(sig), type=Signature)
    decoded_ops = msgspec.msgpack.decode(msgspec.msgpack.encode(ops), type=list[Operation])
    assert decoded_sig == sig and decoded_ops == ops
    assert {type(op) for op in decoded_ops} == {Start, Copy, Literal}


# --- damage is detected -------------------------------------------------------------------------


def apply_to(tmp_path, base, ops, sig, new, algorithm=HashAlgorithm.XXH128):
    return apply_delta(
        base, ops, str(tmp_path / "out"), signature=sig,
        expected_digest=digest_bytes(new, algorithm), hash_algorithm=algorithm,
    )


def test_corrupted_literal_is_detected_and_nothing_unverified_written(tmp_path):
    new = BASE[:2 * MiB] + noise(300_000, 21) + BASE[2 * MiB :]
    base = write(tmp_path / "base", BASE)
    sig = signature(base)
    ops = list(delta(sig, io.BytesIO(new)))
    where = next(i for i, op in enumerate(ops) if isinstance(op, Literal))
    damaged = bytearray(ops[where].data)
    damaged[len(damaged) // 2] ^= 1
    ops[where] = Literal(bytes(damaged), ops[where].digest)
    with pytest.raises(CorruptLiteral, match="corrupted"):
        apply_to(tmp_path, base, ops, sig, new)
    staged = read(tmp_path / "out")
    assert new.startswith(staged) and len(staged) < len(new)
    assert resume_point(str(tmp_path / "out")) == len(staged)


def test_changed_base_chunk_is_detected(tmp_path):
    new = BASE + b"tail"
    base = write(tmp_path / "base", BASE)
    sig = signature(base)
    ops = list(delta(sig, io.BytesIO(new)))
    with open(base, "r+b") as handle:  # the receiver's file changes (or rots) after signing
        handle.seek(MiB)
        handle.write(b"rot")
    with pytest.raises(CorruptBaseChunk, match="no longer matches its signature"):
        apply_to(tmp_path, base, ops, sig, new)
    assert new.startswith(read(tmp_path / "out"))


def test_wrong_final_digest_is_refused(tmp_path):
    base = write(tmp_path / "base", BASE)
    sig = signature(base)
    new = BASE[:-1]
    ops = list(delta(sig, io.BytesIO(new)))
    with pytest.raises(DigestMismatch, match="does not match the expected xxh128 digest"):
        apply_to(tmp_path, base, ops, sig, new + b"!")


def test_truncated_stream_is_refused(tmp_path):
    """A connection lost after some operations (stream just ends) fails the final check."""
    new = noise(MiB, 30)
    base = write(tmp_path / "base", BASE)
    sig = signature(base)
    ops = list(delta(sig, io.BytesIO(new)))
    with pytest.raises(DigestMismatch):
        apply_to(tmp_path, base, ops[:-1], sig, new)


@pytest.mark.parametrize(
    "name,mangle,error,message",
    [
        ("no start", lambda ops, sig: ops[1:], MalformedDelta, "must begin with Start"),
        ("two starts", lambda ops, sig: ops[:2] + [ops[0]] + ops[2:], MalformedDelta, "second Start"),
        ("copy out of range", lambda ops, sig: ops + [Copy(len(sig), 1)], MalformedDelta, "base has"),
        ("empty copy", lambda ops, sig: ops + [Copy(0, 0)], MalformedDelta, "copy of chunks"),
        ("skip beyond chunk", lambda ops, sig: ops + [Copy(0, 1, sig.lengths[0])], MalformedDelta, "skips"),
        ("oversized literal", lambda ops, sig: ops + [Literal(b"x" * (MAX_LITERAL + 1), b"")], MalformedDelta, "exceeds"),
        ("foreign signature", lambda ops, sig: [Start(b"\0" * 16)] + ops[1:], SignatureMismatch, "another signature"),
        ("resume beyond staged", lambda ops, sig: [Start(ops[0].base, 10**9)] + ops[1:], SignatureMismatch, "staged file holds"),
    ],
)
def test_malformed_streams_are_refused(tmp_path, name, mangle, error, message):
    base = write(tmp_path / "base", BASE)
    sig = signature(base)
    ops = list(delta(sig, io.BytesIO(BASE)))
    with pytest.raises(error, match=message):
        apply_to(tmp_path, base, mangle(ops, sig), sig, BASE)


# --- signatures from another chunker or with other parameters are refused ----------------------


@pytest.mark.parametrize(
    "name,changes,message",
    [
        ("other chunker", {"chunker_id": "fastcdc-2016/blake3"}, "made with chunker 'fastcdc-2016/blake3'"),
        ("other min size", {"min_size": 1024}, "differ from this end's"),
        ("other max size", {"max_size": 1 << 20}, "differ from this end's"),
        ("average not a power of two", {"avg_size": 10_000}, "power of two"),
        ("digests missing", {"digests": b""}, "bytes of digests"),
        ("size disagrees", {"size": 1}, "add up to"),
    ],
)
def test_signature_mismatch_is_refused(name, changes, message):
    sig = signature(io.BytesIO(BASE[:200_000]))
    bad = msgspec.structs.replace(sig, **changes)
    with pytest.raises(SignatureMismatch, match=message):
        delta(bad, io.BytesIO(BASE))  # refused on the call, before any operation is produced
    with pytest.raises(SignatureMismatch, match=message):
        apply_delta(
            io.BytesIO(BASE), [], io.BytesIO(), signature=bad,
            expected_digest=b"", hash_algorithm=HashAlgorithm.XXH128,
        )
    assert issubclass(SignatureMismatch, DeltaError)


def test_both_ends_must_cut_alike(tmp_path):
    """A delta made against a signature with another average size is refused by the receiver."""
    base = write(tmp_path / "base", BASE)
    small, large = signature(base, avg_size=4096), signature(base, avg_size=16384)
    ops = list(delta(small, io.BytesIO(BASE)))
    with pytest.raises(SignatureMismatch, match="another signature"):
        apply_to(tmp_path, base, ops, large, BASE)


# --- resume after an interruption ---------------------------------------------------------------


class ConnectionLost(Exception):
    pass


def interrupted(ops, after_literal_bytes: int):
    """Deliver operations until about ``after_literal_bytes`` of literal data went by, then fail."""
    sent = 0
    for op in ops:
        if isinstance(op, Literal):
            if sent >= after_literal_bytes:
                raise ConnectionLost()
            sent += len(op.data)
        yield op


@pytest.mark.parametrize("algorithm", list(HashAlgorithm))
def test_resume_sends_only_what_is_missing(tmp_path, algorithm):
    old = noise(4 * MiB, 40)
    new = old[:MiB] + noise(MiB, 41) + old[MiB : 3 * MiB] + noise(MiB, 42) + old[3 * MiB :]
    base = write(tmp_path / "base", old)
    source = write(tmp_path / "source", new)
    partial = str(tmp_path / "partial")
    sig = signature(base)
    full = list(delta(sig, source))
    expected = digest_bytes(new, algorithm)

    first_attempt: list = []
    with pytest.raises(ConnectionLost):
        apply_delta(
            base, (first_attempt.append(op) or op for op in interrupted(delta(sig, source), int(1.5 * MiB))),
            partial, signature=sig, expected_digest=expected, hash_algorithm=algorithm,
        )
    done = resume_point(partial)
    assert 0 < done < len(new)
    assert read(partial) == new[:done]

    rest = list(delta(sig, source, resume_from=done))
    assert rest[0] == Start(full[0].base, done)
    # Nothing already staged is sent again: the literal bytes of both attempts add up to one transfer.
    assert literal_bytes(first_attempt) + literal_bytes(rest) == literal_bytes(full)
    assert apply_delta(base, rest, partial, signature=sig, expected_digest=expected, hash_algorithm=algorithm) == len(new)
    assert read(partial) == new


def test_resume_point_of_a_missing_file_is_zero(tmp_path):
    assert resume_point(str(tmp_path / "never-staged")) == 0


def positions(ops, sig) -> list[tuple[int, int, object]]:
    """``(output start, output end, op)`` for a delta body."""
    result, position = [], 0
    for op in ops:
        if isinstance(op, Literal):
            size = len(op.data)
        else:
            size = sum(sig.lengths[op.index : op.index + op.count]) - op.skip
        result.append((position, position + size, op))
        position += size
    return result


SKIP_OLD = noise(MiB, 50)
SKIP_NEW = SKIP_OLD[:300_000] + noise(400_000, 51) + SKIP_OLD[300_000:]


@pytest.mark.parametrize(
    "done",
    [0, 1, 8191, 100_000, 299_999, 300_000, 300_001, 555_555, 700_000, 700_001, 1_000_000, len(SKIP_NEW) - 1,
     len(SKIP_NEW), len(SKIP_NEW) + 10],
)
def test_skip_prefix_sends_exactly_the_missing_part(tmp_path, done):
    base = write(tmp_path / "base", SKIP_OLD)
    sig = signature(base)
    body = list(delta(sig, io.BytesIO(SKIP_NEW)))[1:]
    rest = list(skip_prefix(body, sig, done))
    # Literal bytes sent are exactly the literal bytes of the full delta that lie beyond ``done``.
    beyond = sum(
        end - max(start, done) for start, end, op in positions(body, sig) if isinstance(op, Literal) and end > done
    )
    assert literal_bytes(rest) == beyond
    # And the remaining operations rebuild exactly the rest of the file after the staged prefix.
    partial = write(tmp_path / "partial", SKIP_NEW[:done])
    if done <= len(SKIP_NEW):
        apply_delta(
            base, [Start(chunking.fingerprint(sig), done)] + rest, partial, signature=sig,
            expected_digest=digest_bytes(SKIP_NEW, HashAlgorithm.SHA256), hash_algorithm=HashAlgorithm.SHA256,
        )
        assert read(partial) == SKIP_NEW
    else:
        assert rest == []


# --- parameters -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "size,expected",
    [
        (0, 8 << 10),
        (MiB, 8 << 10),
        (100 * MiB, 8 << 10),
        (128 * MiB, 8 << 10),
        (128 * MiB + 1, 16 << 10),
        (1 << 30, 64 << 10),
        (10 << 30, 1 << 20),
        (1 << 40, 4 << 20),
    ],
)
def test_average_chunk_size_grows_with_the_file(size, expected):
    assert average_chunk_size(size) == expected


@pytest.mark.parametrize("avg", [0, 100, 128, 3000, 8 << 20, True, "8192"])
def test_invalid_average_sizes_are_refused(avg):
    with pytest.raises(ValueError, match="invalid average chunk size"):
        chunker_parameters(avg)


def test_signature_records_chunker_and_chunks(tmp_path):
    sig = signature(write(tmp_path / "f", BASE))
    assert sig.chunker_id == CHUNKER_ID
    assert (sig.min_size, sig.avg_size, sig.max_size) == (2048, 8192, 32768)
    assert sig.size == len(BASE) == sum(sig.lengths)
    chunks = sig.chunks
    assert chunks[0].offset == 0 and chunks[-1].offset + chunks[-1].length == len(BASE)
    assert all(c.digest == digest_bytes(BASE[c.offset : c.offset + c.length], HashAlgorithm.XXH128) for c in chunks)
    # Content-defined: the same content at another offset cuts the same way.
    shifted = signature(io.BytesIO(b"0123456789" + BASE))
    assert len(set(shifted.lengths[2:]) ^ set(sig.lengths[2:])) <= 4


def test_signature_does_not_follow_a_final_symlink(tmp_path):
    target = write(tmp_path / "real", BASE)
    os.symlink(target, tmp_path / "link")
    with pytest.raises(OSError):
        signature(str(tmp_path / "link"))


KILLED_CHILD = r"""
import sys
from mutagen_actors.actors.sync.chunking import signature
from mutagen_actors.actors.sync.delta import Literal, apply_delta, delta
from mutagen_actors.actors.sync.hashing import hash_path
from mutagen_actors.actors.sync.settings import HashAlgorithm

base, source, partial, stop_after = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
sig = signature(base)

def stalling(ops):
    literals = 0
    for op in ops:
        if isinstance(op, Literal):
            if literals == stop_after:
                print("stalled", flush=True)
                sys.stdin.read()  # the transfer hangs here until the parent kills the process
            literals += 1
        yield op

apply_delta(base, stalling(delta(sig, source)), partial, signature=sig,
            expected_digest=hash_path(source, HashAlgorithm.SHA256)[0], hash_algorithm=HashAlgorithm.SHA256)
"""


def test_kill_mid_file_then_resume_sends_only_the_rest(tmp_path):
    """A receiving process killed with SIGKILL mid-file leaves a correct prefix; the resume sends the rest."""
    import sys

    old = noise(2 * MiB, 60)
    new = old[: MiB // 2] + noise(3 * MiB, 61) + old[MiB // 2 :]
    base, source = write(tmp_path / "base", old), write(tmp_path / "source", new)
    partial = str(tmp_path / "partial")
    kill_9_once_it_says([sys.executable, "-c", KILLED_CHILD, base, source, partial, "5"],
                        b"stalled\n")

    done = resume_point(partial)
    staged = read(partial)
    assert done == len(staged) and 0 < done < len(new) and new.startswith(staged)

    sig = signature(base)
    full, rest = list(delta(sig, source)), list(delta(sig, source, resume_from=done))
    # Only the literal bytes of the full delta that lie beyond the staged prefix are sent again.
    beyond = sum(end - max(start, done) for start, end, op in positions(full[1:], sig) if isinstance(op, Literal) and end > done)
    assert 0 < literal_bytes(rest) == beyond < literal_bytes(full)
    apply_delta(
        base, rest, partial, signature=sig,
        expected_digest=digest_bytes(new, HashAlgorithm.SHA256), hash_algorithm=HashAlgorithm.SHA256,
    )
    assert read(partial) == new
