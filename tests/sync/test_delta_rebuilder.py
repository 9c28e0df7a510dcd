"""The incremental half of a delta (``delta.Rebuilder``, ``span_of``) and the staging store's
resume files: a delta fed one operation at a time, split anywhere, rebuilds the same bytes as
``apply_delta``; a damaged operation stops it with only verified bytes emitted; partial content
is kept per digest and removed when no longer wanted."""

from __future__ import annotations

import io
import os
import random

import pytest

from mutagen_actors.actors.sync.chunking import signature
from mutagen_actors.actors.sync.delta import (
    CorruptBaseChunk,
    CorruptLiteral,
    Copy,
    Literal,
    MalformedDelta,
    Rebuilder,
    SignatureMismatch,
    Start,
    delta,
    span_of,
)
from mutagen_actors.actors.sync.hashing import digest_bytes
from mutagen_actors.actors.sync.settings import HashAlgorithm
from mutagen_actors.actors.sync.staging import Staging


def noise(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


BASE = noise(300_000, 1)
TARGETS = {
    "edit": BASE[:1000] + b"X" + BASE[1001:],
    "insert": BASE[:150_000] + noise(5000, 2) + BASE[150_000:],
    "delete": BASE[:50_000] + BASE[90_000:],
    "truncate": BASE[:123_457],
    "append": BASE + noise(40_000, 3),
    "empty": b"",
    "identical": BASE,
    "unrelated": noise(200_000, 4),
}


def rebuild(base: bytes, operations, resume: bytes = b"") -> bytes:
    sig = signature(io.BytesIO(base), avg_size=1024)
    out = bytearray(resume)
    rebuilder = Rebuilder(lambda offset, length: base[offset:offset + length], sig,
                          out.extend, len(resume))
    operations = list(operations)
    rebuilder.check_start(operations[0])
    for operation in operations[1:]:
        rebuilder.feed(operation)
    assert rebuilder.position == len(out)
    return bytes(out)


@pytest.mark.parametrize("name", list(TARGETS))
@pytest.mark.parametrize("resume", [0, 1, 77_777])
def test_rebuilder_rebuilds_every_edit_from_any_resume_point(name, resume):
    target = TARGETS[name]
    resume = min(resume, len(target))
    sig = signature(io.BytesIO(BASE), avg_size=1024)
    operations = list(delta(sig, io.BytesIO(target), resume_from=resume, max_literal=4096))
    offsets = sig.offsets()
    spans = sum(span_of(op, sig.lengths, offsets) for op in operations)
    assert spans == len(target) - resume  # span_of adds up to what is rebuilt
    assert rebuild(BASE, operations, target[:resume]) == target


@pytest.mark.parametrize("damage, error", [
    (lambda ops: [ops[0], Literal(b"x" + ops[1].data[1:], ops[1].digest)], CorruptLiteral),
    (lambda ops: [ops[0], Copy(10_000)], MalformedDelta),
    (lambda ops: [ops[0], Start(ops[0].base)], MalformedDelta),
    (lambda ops: [Start(b"\0" * 16)], SignatureMismatch),
    (lambda ops: [Start(ops[0].base, 5)], SignatureMismatch),
])
def test_a_damaged_delta_stops_with_only_verified_bytes_emitted(damage, error):
    target = noise(10_000, 5) + BASE
    sig = signature(io.BytesIO(BASE), avg_size=1024)
    operations = list(delta(sig, io.BytesIO(target)))
    assert isinstance(operations[1], Literal)
    with pytest.raises(error):
        rebuild(BASE, damage(operations))


def test_a_base_that_changed_since_it_was_signed_is_refused():
    sig = signature(io.BytesIO(BASE), avg_size=1024)
    operations = list(delta(sig, io.BytesIO(BASE)))
    changed = BASE[:5000] + b"!" + BASE[5001:]
    emitted = bytearray()
    rebuilder = Rebuilder(lambda offset, length: changed[offset:offset + length], sig,
                          emitted.extend)
    rebuilder.check_start(operations[0])
    with pytest.raises(CorruptBaseChunk):
        for operation in operations[1:]:
            rebuilder.feed(operation)
    assert BASE.startswith(bytes(emitted))  # what was emitted is correct


def test_resume_files_are_kept_per_digest_and_removed_when_not_wanted(tmp_path):
    store = Staging(str(tmp_path / "store"), HashAlgorithm.XXH128)
    wanted, stale = digest_bytes(b"wanted", HashAlgorithm.XXH128), digest_bytes(
        b"stale", HashAlgorithm.XXH128)
    for digest, size in ((wanted, 100), (stale, 50)):
        os.makedirs(os.path.dirname(store.resume_path(digest)), exist_ok=True)
        with open(store.resume_path(digest), "wb") as stream:
            stream.write(b"x" * size)
    assert sorted(store.resume_digests()) == sorted([wanted, stale])
    assert list(store.digests()) == []  # partial content is never 'staged'
    assert store.keep_resumes({wanted}) == {wanted: 100}
    assert store.resume_size(wanted) == 100 and store.resume_size(stale) == 0
    store.discard_resume(wanted)
    assert store.resume_size(wanted) == 0 and list(store.resume_digests()) == []


def test_a_long_copy_run_is_split_so_each_operation_stays_bounded(monkeypatch):
    from mutagen_actors.actors.sync import delta as delta_module

    monkeypatch.setattr(delta_module, "MAX_COPY_RUN", 20_000)
    sig = signature(io.BytesIO(BASE), avg_size=1024)
    operations = list(delta(sig, io.BytesIO(BASE)))
    offsets = sig.offsets()
    spans = [span_of(op, sig.lengths, offsets) for op in operations[1:]]
    assert len(spans) > 10 and all(isinstance(op, Copy) for op in operations[1:])
    assert max(spans) <= 20_000 and sum(spans) == len(BASE)
    assert rebuild(BASE, operations) == BASE
