"""Content straight from the sender to the receiver (``SupplyTo``): the real stager, the real
``DirectSupplier`` and a receiving endpoint behind a real ZeroMQ mailbox (``direct_pipeline``).
Content arrives byte-exact, a large file's pieces in order, two batches in flight and never
more; a damaged piece is fetched again whole; a file that changes size while it is sent is not
staged (a problem, the cycle runs again) and nothing else suffers; the receiver's refusal fails
the job with the receiver's reason; the progress numbers add up."""

from __future__ import annotations

import asyncio
import os
import random

import pytest

from mutagen_actors.actors.syncsession import stager
from mutagen_actors.wire.errors import RemoteError
from mutagen_actors.wire.messages import endpoint as m
from mutagen_actors.wire.messages.base import ErrorReply

from .direct_pipeline import DirectPair
from .pipeline import digest, write_file

MIB = 1 << 20


def noise(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


@pytest.fixture
def pair(tmp_path):
    pair = DirectPair(str(tmp_path))
    pair.start()
    yield pair
    pair.stop()


def items(files: dict) -> list:
    return [m.StageItem(name, digest(content)) for name, content in files.items()]


def assert_progress_adds_up(progress, files: dict) -> None:
    assert progress.received_files == progress.expected_files == len(files)
    total = sum(len(c) for c in files.values())
    assert progress.total_received_size == progress.total_expected_size == total


def test_small_and_large_files_arrive_exact_with_large_pieces_in_order(pair):
    files = {f"d{i % 7}/f{i}.txt": noise(1 + 997 * i % 40_000, i) for i in range(300)}
    files["big.bin"] = noise(5 * MIB + 12345, 99)
    files["empty"] = b""
    for name, content in files.items():
        write_file(pair.alpha.root, name, content)
    done = pair.run(pair.stage(items(files)))
    assert all(pair.staged(content) == content for content in files.values())
    big = [offset for path, offset in pair.offsets if path == "big.bin"]
    assert big == sorted(big) and big[0] == 0 and len(big) == 6  # 1 MiB pieces, in order
    assert 1 < pair.sender.most <= stager.WRITES_IN_FLIGHT  # asked ahead, never more
    assert done["problems"] is None and done["refetched"] == 0
    assert done["content_bytes"] == sum(len(c) for c in files.values())
    assert_progress_adds_up(done["progress"], files)
    # the content went from the sender to the receiver's mailbox, never through the stager
    assert "Supplied" not in pair.sender.bytes and "StageChunks" not in pair.receiver.bytes


def test_a_piece_damaged_on_its_way_is_fetched_again_whole(pair):
    content = noise(4 * MIB + 7, 5)
    write_file(pair.alpha.root, "big.bin", content)
    damaged = []

    def damage(body: m.StageChunks):
        for chunk in body.chunks:
            if chunk.offset == 2 * MIB and not damaged:  # the third piece, once
                chunk.data = bytes([chunk.data[0] ^ 1]) + chunk.data[1:]
                damaged.append(chunk.offset)
        return body

    pair.receiving = damage
    done = pair.run(pair.stage(items({"big.bin": content})))
    assert damaged
    assert pair.staged(content) == content
    offsets = [offset for _, offset in pair.offsets]
    restart = offsets.index(0, 1)  # the whole file again, from 0
    assert offsets[restart:] == sorted(offsets[restart:])
    assert done["refetched"] == 1
    assert done["problems"]["count"] == 1 and "corrupted" in done["problems"]["first"]
    assert done["progress"].received_files == done["progress"].expected_files == 1


def test_a_file_that_changes_size_while_sent_is_a_problem_and_the_rest_arrives(pair):
    files = {"big.bin": noise(4 * MIB, 1), "a.txt": b"alpha", "z.txt": noise(70_000, 2)}
    for name, content in files.items():
        write_file(pair.alpha.root, name, content)

    def shrink(number: int) -> None:
        if number == 2:  # after the first piece was read: the file is cut short
            with open(os.path.join(pair.alpha.root, "big.bin"), "r+b") as stream:
                stream.truncate(MIB + MIB // 2)

    pair.sender.before_read = shrink
    done = pair.run(pair.stage(items(files)))
    assert pair.staged(files["big.bin"]) is None  # not staged: it does not verify
    assert pair.staged(files["a.txt"]) == files["a.txt"]
    assert pair.staged(files["z.txt"]) == files["z.txt"]
    assert done["problems"] is not None and done["problems"]["count"] >= 1
    progress = done["progress"]
    assert progress.received_files == progress.expected_files == 2
    assert progress.total_received_size == progress.total_expected_size


def test_the_receivers_refusal_fails_the_job_with_its_reason(pair):
    files = {f"f{i}": noise(200_000, i) for i in range(12)}
    for name, content in files.items():
        write_file(pair.alpha.root, name, content)

    def refuse(body):
        if pair.stage_chunks >= 2:
            return ErrorReply("stale", "the beta endpoint restarted since it was scanned")
        return body

    pair.receiving = refuse
    with pytest.raises(RemoteError) as failure:
        pair.run(pair.stage(items(files)))
    assert failure.value.code == "stale"
    assert failure.value.message == "the beta endpoint restarted since it was scanned"


def test_a_receiver_that_is_not_an_ipc_mailbox_is_refused(pair):
    write_file(pair.alpha.root, "f", b"x")
    request = m.SupplyTo([m.SupplyRequest("f", digest(b"x"), 0)], MIB, "tcp://127.0.0.1:9")
    with pytest.raises(RemoteError) as failure:
        pair.run(pair.sender.request(request, timeout=10))
    assert failure.value.code == "invalid-argument" and "ipc://" in failure.value.message


def test_a_cancelled_supply_to_leaves_no_write_behind(pair, tmp_path):
    """A ``SupplyTo`` cancelled while its batch waits to be sent (no receiver there) takes its
    write with it: no task is left waiting for an acknowledgement that cannot come."""
    write_file(pair.alpha.root, "f", b"x")
    request = m.SupplyTo([m.SupplyRequest("f", digest(b"x"), 0)], MIB,
                         f"ipc://{tmp_path}/nobody-listens")

    async def main():
        before = asyncio.all_tasks()  # the endpoints' own (periodic saves, watchers)
        answer = asyncio.ensure_future(pair.sender.direct.answer(request))

        def left():
            # The receiver client's own tasks stay (its connection watcher and reply reader,
            # closed with the supplier); what must not is a request of the cancelled answer.
            return [t.get_coro().__qualname__ for t in asyncio.all_tasks() - before
                    if t is not answer and not t.done()
                    and t.get_coro().__qualname__.split(".")[-1] not in ("_watch", "_read")]

        deadline = asyncio.get_running_loop().time() + 10
        while not left():  # the batch is read and its write waits for a receiver
            assert asyncio.get_running_loop().time() < deadline, "the write never started"
            await asyncio.sleep(0.01)  # polling for the condition, bounded above
        answer.cancel()
        with pytest.raises(asyncio.CancelledError):
            await answer
        deadline = asyncio.get_running_loop().time() + 2  # cancellations land in a few turns
        while left() and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)
        return left()

    assert pair.run(main()) == []
