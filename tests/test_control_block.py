"""Control blocks, slots of a worker's nameless arena: torn-read freedom, text limits,
private pages, nothing named, no tracker."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
import time
from typing import Iterator, List, Optional, Set

import pytest

from numerous.tasks.backends.local._shm import (
    ARENA_SIZE,
    PARENT_SLOTS,
    STATUS_CAPACITY,
    Arena,
    ControlBlock,
    linked_blocks,
)

CUT_MARK = "…"

# Hammers the block with self-consistent pairs: progress p, status "p:" + "x" * n where
# n % 100 == p. A reader that mixes two writes sees a pair that breaks one of the rules.
# It stops when the parent raises the block's stop flag.
WRITER = textwrap.dedent(
    """
    import sys
    from numerous.tasks.backends.local._shm import Arena
    block = Arena.attach(int(sys.argv[1])).block(int(sys.argv[2]))
    print("attached", flush=True)
    i = 0
    while not block.stop_requested and i < 50_000_000:
        for _ in range(100):
            p = i % 100
            block.write_progress(float(p), f"{p}:" + "x" * (i % 2000))
            i += 1
    block.close()
    print(i, flush=True)
    """
)
HAMMER_AT_LEAST = 1.0  # seconds of concurrent writing and reading
HAMMER_AT_MOST = 5.0  # on a loaded machine, read on until enough distinct snapshots
DISTINCT_WANTED = 2_000


@pytest.fixture
def block() -> Iterator[ControlBlock]:
    """A slot of a fresh arena, as the parent holds it."""
    arena = Arena.create()
    taken = arena.take()
    assert taken is not None
    yield taken
    taken.close()
    arena.retire()


def consistent(progress: Optional[float], status: Optional[str], cut: bool) -> bool:
    if progress is None or status is None or cut:
        return False
    head, colon, tail = status.partition(":")
    return (
        colon == ":"
        and head == str(int(progress))
        and progress == int(progress)
        and tail == "x" * len(tail)
        and len(tail) % 100 == int(progress)
    )


@pytest.mark.timeout(30)
def test_reads_are_never_torn_while_another_process_writes() -> None:
    arena = Arena.create()
    block = arena.take()
    assert block is not None and arena.take() is not None  # not the first slot: offsets count
    block = arena.take() or block
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(arena.fd), str(block.slot)],
        stdout=subprocess.PIPE,
        text=True,
        pass_fds=(arena.fd,),
    )
    try:
        assert writer.stdout is not None
        assert writer.stdout.readline() == "attached\n"
        torn: List[object] = []
        seen: Set[int] = set()
        reads = 0
        started = time.monotonic()
        while writer.poll() is None:
            elapsed = time.monotonic() - started
            if elapsed > HAMMER_AT_MOST or (elapsed > HAMMER_AT_LEAST and len(seen) >= DISTINCT_WANTED):
                break
            for _ in range(100):
                snapshot = block.read()
                if snapshot is None or snapshot.seq == 0:  # gave up on a busy writer / nothing yet
                    continue
                reads += 1
                if not consistent(snapshot.progress, snapshot.status, snapshot.status_was_cut):
                    torn.append(snapshot[:3])
                seen.add(snapshot.seq)
        block.request_stop()
        writes = int(writer.stdout.read().split()[-1])
    finally:
        writer.kill()
        writer.wait()
        writer.stdout.close()  # type: ignore[union-attr]
        block.close()
        arena.retire()
    assert torn == [], f"{len(torn)} torn reads of {reads}, e.g. {torn[:3]}"
    assert all(seq % 2 == 0 for seq in seen)  # never a snapshot taken mid-write
    # The two really overlapped: many writes, and the reader saw many different ones.
    assert writes > 20_000 and reads > 1_000 and len(seen) > 200, (writes, reads, len(seen))


def _cut_checks(block: ControlBlock, text: str) -> str:
    """Write ``text`` as the status; check the cut; return what the parent read."""
    block.write_status(text)
    snapshot = block.read()
    assert snapshot is not None and snapshot.status is not None
    stored = snapshot.status
    encoded = stored.encode("utf-8")  # strict: valid UTF-8, no half character
    assert snapshot.status_was_cut
    assert stored.endswith(CUT_MARK)
    assert STATUS_CAPACITY - 3 <= len(encoded) <= STATUS_CAPACITY  # cut at most one character short
    assert text.startswith(stored[: -len(CUT_MARK)])
    return stored


def test_a_100_kb_status_is_cut_to_the_capacity_and_marked(block: ControlBlock) -> None:
    stored = _cut_checks(block, "a" * 100_000)
    assert stored == "a" * (STATUS_CAPACITY - 3) + CUT_MARK


@pytest.mark.parametrize("offset", [0, 1, 2, 3])
def test_an_emoji_crossing_the_capacity_boundary_is_never_split(block: ControlBlock, offset: int) -> None:
    # Four-byte characters; the prefix moves the boundary through each byte position.
    text = "a" * offset + "😀" * (STATUS_CAPACITY // 4 + 10)
    stored = _cut_checks(block, text)
    assert set(stored[offset:-1]) == {"😀"}


def test_mixed_width_text_is_cut_at_a_character_boundary(block: ControlBlock) -> None:
    text = ("é😀中a" * 2_000)[:5_000]
    _cut_checks(block, text)


def test_text_exactly_at_the_capacity_is_kept_whole_and_one_byte_more_is_cut(block: ControlBlock) -> None:
    block.write_status("b" * STATUS_CAPACITY)
    whole = block.read()
    block.write_status("b" * (STATUS_CAPACITY + 1))
    cut = block.read()
    block.write_status("short again")
    short = block.read()
    assert whole is not None and (whole.status, whole.status_was_cut) == ("b" * STATUS_CAPACITY, False)
    assert cut is not None and cut.status_was_cut and cut.status.endswith(CUT_MARK)  # type: ignore[union-attr]
    assert short is not None and (short.status, short.status_was_cut) == ("short again", False)


@pytest.mark.parametrize(
    "text",
    ["", "plain", "emoji 😀 and ünïcödé", "lone \ud800 surrogate", "\udcff escaped byte", "\x00nul\x00"],
)
def test_short_and_odd_text_round_trips(block: ControlBlock, text: str) -> None:
    block.write_progress(12.5, text)
    snapshot = block.read()
    assert snapshot is not None
    assert (snapshot.progress, snapshot.status, snapshot.status_was_cut) == (12.5, text, False)


def test_a_long_status_full_of_lone_surrogates_is_stored_without_crashing(block: ControlBlock) -> None:
    text = "s" * (STATUS_CAPACITY - 4) + "\ud800" * 50
    block.write_status(text)
    snapshot = block.read()
    assert snapshot is not None and snapshot.status is not None and snapshot.status_was_cut
    assert snapshot.status.endswith(CUT_MARK) and text.startswith(snapshot.status[:-1])
    assert len(snapshot.status.encode("utf-8", "surrogatepass")) <= STATUS_CAPACITY


def test_progress_without_status_keeps_the_last_status(block: ControlBlock) -> None:
    assert block.read() == (0, None, None, False)  # nothing reported yet
    block.write_status("loading")
    block.write_progress(40.0, None)
    snapshot = block.read()
    assert snapshot is not None and (snapshot.progress, snapshot.status) == (40.0, "loading")


def _shm_names() -> Set[str]:
    """The names in /dev/shm a control block could have (the fallback's ``nt_``,
    ``shared_memory``'s ``psm_``): other processes on the machine make names of their own."""
    return {name for name in os.listdir("/dev/shm") if name.startswith(("nt_", "psm_"))}


def test_an_arena_has_no_name_and_its_memory_is_this_users_alone() -> None:
    before = _shm_names()
    arena = Arena.create()
    try:
        assert _shm_names() - before == set()  # nothing named: nothing can outlive its owners
        link = os.readlink(f"/proc/self/fd/{arena.fd}")
        assert link.startswith("/memfd:numerous-tasks-arena"), link  # reachable by descriptor only
        assert stat.S_IMODE(os.fstat(arena.fd).st_mode) & 0o077 == 0  # and private to the user
        assert os.fstat(arena.fd).st_size == ARENA_SIZE
    finally:
        arena.retire()
    assert linked_blocks() == frozenset()


def test_without_memfd_the_fallback_segment_loses_its_name_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(os, "memfd_create")
    before = _shm_names()
    arena = Arena.create()
    try:
        assert _shm_names() - before == set()
        assert linked_blocks() == frozenset()
        block = arena.take()
        assert block is not None
        block.write_status("works")
        assert block.read().status == "works"  # type: ignore[union-attr]
        block.close()
    finally:
        arena.retire()


def test_each_slot_is_a_page_of_its_own_zeroed_for_its_instance() -> None:
    arena = Arena.create()
    try:
        blocks = [arena.take() for _ in range(PARENT_SLOTS)]
        assert all(b is not None for b in blocks)
        assert arena.take() is None  # all the parent's in use: nothing is shared
        assert sorted(b.slot for b in blocks if b is not None) == list(range(PARENT_SLOTS))
        first = blocks[0]
        assert first is not None
        first.write_progress(80.0, "from the last instance")
        first.request_stop()
        for other in blocks[1:]:
            assert other is not None and other.read() == (0, None, None, False) and not other.stop_requested
        slot = first.slot
        first.close()
        again = arena.take()
        assert again is not None and again.slot == slot
        assert again.read() == (0, None, None, False) and not again.stop_requested and not again.taken
        for b in blocks[1:] + [again]:
            assert b is not None
            b.close()
    finally:
        arena.retire()


def test_a_kept_reference_to_a_closed_slot_fails_cleanly_and_sees_nothing_of_the_next() -> None:
    arena = Arena.create()
    try:
        block = arena.take()
        assert block is not None
        view = block.stop_flag_view()
        view.release()
        block.close()
        with pytest.raises(ValueError):
            block.write_status("too late")
        with pytest.raises(ValueError):
            block.stop_flag_view()
        assert block.running_ns is None and block.taken  # closed: reads as "over"
        block.request_stop()  # a cancel() racing the instance's end must not raise
    finally:
        arena.retire()


def test_the_arena_is_unmapped_when_retired_and_its_last_slot_given_back() -> None:
    arena = Arena.create()
    block = arena.take()
    assert block is not None
    arena.retire()  # the worker is gone, but the parent still reads this instance's last progress
    assert arena.fd == -1
    block.write_status("still readable")
    assert block.read().status == "still readable"  # type: ignore[union-attr]
    block.close()  # the last slot: now it is unmapped
    with pytest.raises(ValueError):
        arena._buf[0]


_NO_TRACKER = """
import sys
import psutil
from multiprocessing import resource_tracker
{body}
assert psutil.Process().children(recursive=True) == [], psutil.Process().children(recursive=True)
assert resource_tracker._resource_tracker._pid is None, "a resource tracker was started"
print("clean")
"""


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(
            """
import os
from numerous.tasks.backends.local._shm import Arena
arena = Arena.create()
block = arena.take()
other = Arena.attach(os.dup(arena.fd)).block(block.slot)
other.write_progress(50.0, "half")
assert block.read().status == "half"
other.close()
block.close()
arena.retire()
""",
            id="create-attach-retire",
        ),
        pytest.param(
            """
sys.path.insert(0, {tests!r})
from numerous.tasks import Session
from backend_tasks import double
with Session():
    assert [double.instance().start(i).result(timeout=30) for i in range(3)] == [0, 2, 4]
""",
            id="a-whole-session",
        ),
    ],
)
def test_no_resource_tracker_is_started_and_nothing_is_printed(body: str) -> None:
    code = _NO_TRACKER.format(body=body.format(tests=os.path.dirname(__file__)))
    result = subprocess.run([sys.executable, "-W", "error", "-c", code], capture_output=True, text=True, timeout=30)
    assert (result.returncode, result.stdout, result.stderr) == (0, "clean\n", "")


def test_stop_flag_is_seen_through_the_fast_view(block: ControlBlock) -> None:
    view = block.stop_flag_view()
    try:
        assert view[0] == 0 and not block.stop_requested
        block.request_stop()
        assert view[0] == 1 and block.stop_requested
    finally:
        view.release()


@pytest.mark.parametrize("errno_, message", [(28, "No space left on device"), (12, "Cannot allocate memory")])
def test_no_memory_for_an_arena_is_an_error_at_creation_that_leaves_nothing(
    monkeypatch: pytest.MonkeyPatch, errno_: int, message: str
) -> None:
    def no_memory(fd: int, offset: int, length: int) -> None:
        raise OSError(errno_, message)

    fds_before = set(os.listdir("/proc/self/fd"))
    monkeypatch.setattr(os, "posix_fallocate", no_memory)
    with pytest.raises(OSError, match=message):
        Arena.create()
    assert set(os.listdir("/proc/self/fd")) <= fds_before  # its descriptor was closed
