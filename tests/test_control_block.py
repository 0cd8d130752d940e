"""The shared-memory control block: torn-read freedom, text limits, names, no tracker."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
import time
from typing import List, Optional, Set

import pytest

from numerous.tasks.backends.local._shm import STATUS_CAPACITY, ControlBlock, linked_blocks

CUT_MARK = "…"

# Hammers the block with self-consistent pairs: progress p, status "p:" + "x" * n where
# n % 100 == p. A reader that mixes two writes sees a pair that breaks one of the rules.
# It stops when the parent raises the block's stop flag.
WRITER = textwrap.dedent(
    """
    import sys
    from numerous.tasks.backends.local._shm import ControlBlock
    block = ControlBlock.attach(sys.argv[1])
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
    block = ControlBlock.create()
    writer = subprocess.Popen([sys.executable, "-c", WRITER, block.name], stdout=subprocess.PIPE, text=True)
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
        block.unlink()
        block.close()
    assert torn == [], f"{len(torn)} torn reads of {reads}, e.g. {torn[:3]}"
    assert all(seq % 2 == 0 for seq in seen)  # never a snapshot taken mid-write
    # The two really overlapped: many writes, and the reader saw many different ones.
    assert writes > 20_000 and reads > 1_000 and len(seen) > 200, (writes, reads, len(seen))


def _cut_checks(text: str) -> str:
    """Write ``text`` as the status; check the cut; return what the parent read."""
    block = ControlBlock.create()
    try:
        block.write_status(text)
        snapshot = block.read()
    finally:
        block.unlink()
        block.close()
    assert snapshot is not None and snapshot.status is not None
    stored = snapshot.status
    encoded = stored.encode("utf-8")  # strict: valid UTF-8, no half character
    assert snapshot.status_was_cut
    assert stored.endswith(CUT_MARK)
    assert STATUS_CAPACITY - 3 <= len(encoded) <= STATUS_CAPACITY  # cut at most one character short
    assert text.startswith(stored[: -len(CUT_MARK)])
    return stored


def test_a_100_kb_status_is_cut_to_the_capacity_and_marked() -> None:
    stored = _cut_checks("a" * 100_000)
    assert stored == "a" * (STATUS_CAPACITY - 3) + CUT_MARK


@pytest.mark.parametrize("offset", [0, 1, 2, 3])
def test_an_emoji_crossing_the_capacity_boundary_is_never_split(offset: int) -> None:
    # Four-byte characters; the prefix moves the boundary through each byte position.
    text = "a" * offset + "😀" * (STATUS_CAPACITY // 4 + 10)
    stored = _cut_checks(text)
    assert set(stored[offset:-1]) == {"😀"}


def test_mixed_width_text_is_cut_at_a_character_boundary() -> None:
    text = ("é😀中a" * 2_000)[:5_000]
    _cut_checks(text)


def test_text_exactly_at_the_capacity_is_kept_whole_and_one_byte_more_is_cut() -> None:
    block = ControlBlock.create()
    try:
        block.write_status("b" * STATUS_CAPACITY)
        whole = block.read()
        block.write_status("b" * (STATUS_CAPACITY + 1))
        cut = block.read()
        block.write_status("short again")
        short = block.read()
    finally:
        block.unlink()
        block.close()
    assert whole is not None and (whole.status, whole.status_was_cut) == ("b" * STATUS_CAPACITY, False)
    assert cut is not None and cut.status_was_cut and cut.status.endswith(CUT_MARK)  # type: ignore[union-attr]
    assert short is not None and (short.status, short.status_was_cut) == ("short again", False)


@pytest.mark.parametrize(
    "text",
    ["", "plain", "emoji 😀 and ünïcödé", "lone \ud800 surrogate", "\udcff escaped byte", "\x00nul\x00"],
)
def test_short_and_odd_text_round_trips(text: str) -> None:
    block = ControlBlock.create()
    try:
        block.write_progress(12.5, text)
        snapshot = block.read()
    finally:
        block.unlink()
        block.close()
    assert snapshot is not None
    assert (snapshot.progress, snapshot.status, snapshot.status_was_cut) == (12.5, text, False)


def test_a_long_status_full_of_lone_surrogates_is_stored_without_crashing() -> None:
    text = "s" * (STATUS_CAPACITY - 4) + "\ud800" * 50
    block = ControlBlock.create()
    try:
        block.write_status(text)
        snapshot = block.read()
    finally:
        block.unlink()
        block.close()
    assert snapshot is not None and snapshot.status is not None and snapshot.status_was_cut
    assert snapshot.status.endswith(CUT_MARK) and text.startswith(snapshot.status[:-1])
    assert len(snapshot.status.encode("utf-8", "surrogatepass")) <= STATUS_CAPACITY


def test_progress_without_status_keeps_the_last_status() -> None:
    block = ControlBlock.create()
    try:
        assert block.read() == (0, None, None, False, 0)  # nothing reported yet
        block.write_status("loading")
        block.write_progress(40.0, None)
        snapshot = block.read()
    finally:
        block.unlink()
        block.close()
    assert snapshot is not None and (snapshot.progress, snapshot.status) == (40.0, "loading")


def test_names_are_random_and_blocks_are_private_to_the_user() -> None:
    blocks = [ControlBlock.create() for _ in range(2)]
    try:
        names = [b.name for b in blocks]
        assert names[0] != names[1]
        for name in names:
            assert name.startswith("nt_")
            random_part = name[len("nt_") :]
            assert len(random_part) >= 24 and int(random_part, 16) >= 0
            assert stat.S_IMODE(os.stat(f"/dev/shm/{name}").st_mode) == 0o600
    finally:
        for block in blocks:
            block.unlink()
            block.close()
    assert not any(os.path.exists(f"/dev/shm/{name}") for name in names)


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
from numerous.tasks.backends.local._shm import ControlBlock
block = ControlBlock.create()
other = ControlBlock.attach(block.name)
other.write_progress(50.0, "half")
assert block.read().status == "half"
other.close()
block.unlink()
block.close()
""",
            id="create-attach-unlink",
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


def test_unlink_removes_the_name_and_keeps_the_mapping() -> None:
    block = ControlBlock.create()
    block.unlink()
    block.unlink()  # idempotent
    assert not os.path.exists(f"/dev/shm/{block.name}")
    block.write_status("still mapped")
    assert block.read().status == "still mapped"  # type: ignore[union-attr]
    block.close()
    block.close()


def test_stop_flag_is_seen_through_the_fast_view() -> None:
    block = ControlBlock.create()
    view = block.stop_flag_view()
    try:
        assert view[0] == 0 and not block.stop_requested
        block.request_stop()
        assert view[0] == 1 and block.stop_requested
    finally:
        view.release()
        block.unlink()
        block.close()


def test_a_full_dev_shm_is_an_error_at_creation(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_space(fd: int, offset: int, length: int) -> None:
        raise OSError(28, "No space left on device")

    import secrets

    random_part = secrets.token_hex(12)  # the name the block gets, known in advance
    monkeypatch.setattr(secrets, "token_hex", lambda nbytes: random_part)
    monkeypatch.setattr(os, "posix_fallocate", no_space)
    with pytest.raises(OSError, match="No space"):
        ControlBlock.create()
    assert not os.path.exists(f"/dev/shm/nt_{random_part}")  # the half-made block is gone
    assert f"nt_{random_part}" not in linked_blocks()


def test_the_process_knows_which_block_names_it_still_has_to_unlink() -> None:
    block = ControlBlock.create()
    assert block.name in linked_blocks()
    block.unlink()
    assert block.name not in linked_blocks()
    block.close()


def test_a_stop_request_after_the_block_closed_is_harmless() -> None:
    block = ControlBlock.create()
    block.unlink()
    block.close()
    block.request_stop()  # a cancel() racing the instance's end must not raise
