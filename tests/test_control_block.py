"""The shared-memory control block: torn-read freedom, text limits, names, no tracker."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap

import pytest

from numerous.tasks.backends.local._shm import STATUS_CAPACITY, ControlBlock

WRITER = textwrap.dedent(
    """
    import sys, time
    from numerous.tasks.backends.local._shm import ControlBlock
    block = ControlBlock.attach(sys.argv[1])
    print("attached", flush=True)
    deadline = time.monotonic() + float(sys.argv[2])
    i = 0
    while time.monotonic() < deadline:
        p = i % 100
        block.write_progress(float(p), f"{p}:" + "x" * (i % 2000))
        i += 1
    print(i, flush=True)
    """
)


def consistent(progress: float, status: str) -> bool:
    head, _, tail = status.partition(":")
    return head == str(int(progress)) and set(tail) <= {"x"}


@pytest.mark.timeout(30)
def test_reads_are_never_torn_while_another_process_writes() -> None:
    block = ControlBlock.create()
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, block.name, "1.0"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert writer.stdout is not None and writer.stdout.readline() == "attached\n"
        torn, distinct, reads = 0, set(), 0
        while writer.poll() is None:
            snapshot = block.read()
            if snapshot is None or snapshot.progress is None:
                continue
            reads += 1
            assert snapshot.status is not None
            if not consistent(snapshot.progress, snapshot.status):
                torn += 1
            distinct.add(snapshot.seq)
        writes = int(writer.stdout.read().split()[-1])
    finally:
        writer.kill()
        writer.wait()
        writer.stdout.close()  # type: ignore[union-attr]
        block.unlink()
        block.close()
    assert torn == 0
    assert writes > 10_000 and reads > 1_000 and len(distinct) > 500


def test_a_long_status_is_cut_at_a_character_boundary_and_marked() -> None:
    block = ControlBlock.create()
    try:
        for text in ("a" * 100_000, "é" * 3_000, "😀" * 2_000, "a" + "😀" * 1_100):
            block.write_status(text)
            snapshot = block.read()
            assert snapshot is not None and snapshot.status is not None
            assert snapshot.status_was_cut and snapshot.status.endswith("…")
            assert len(snapshot.status.encode()) <= STATUS_CAPACITY
            assert text.startswith(snapshot.status[:-1])
    finally:
        block.unlink()
        block.close()


def test_short_and_odd_text_round_trips() -> None:
    block = ControlBlock.create()
    try:
        for text in ("", "plain", "emoji 😀 and ünïcödé", "lone \ud800 surrogate"):
            block.write_progress(12.5, text)
            snapshot = block.read()
            assert snapshot is not None
            assert (snapshot.progress, snapshot.status, snapshot.status_was_cut) == (12.5, text, False)
    finally:
        block.unlink()
        block.close()


def test_names_are_random_and_blocks_are_private_to_the_user() -> None:
    blocks = [ControlBlock.create() for _ in range(2)]
    try:
        names = [b.name for b in blocks]
        assert names[0] != names[1]
        assert all(len(name) >= 3 + 24 for name in names)
        for name in names:
            mode = os.stat(f"/dev/shm/{name}").st_mode
            assert stat.S_IMODE(mode) == 0o600
    finally:
        for block in blocks:
            block.unlink()
            block.close()


def test_no_resource_tracker_is_started_and_nothing_is_printed() -> None:
    code = textwrap.dedent(
        """
        import psutil
        from numerous.tasks.backends.local._shm import ControlBlock
        block = ControlBlock.create()
        other = ControlBlock.attach(block.name)
        other.close()
        block.unlink()
        block.close()
        assert psutil.Process().children() == [], psutil.Process().children()
        print("clean")
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert (result.returncode, result.stdout, result.stderr) == (0, "clean\n", "")


def test_unlink_removes_the_name_and_keeps_the_mapping() -> None:
    block = ControlBlock.create()
    block.unlink()
    assert not os.path.exists(f"/dev/shm/{block.name}")
    block.write_status("still mapped")
    assert block.read().status == "still mapped"  # type: ignore[union-attr]
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

    before = set(os.listdir("/dev/shm"))
    monkeypatch.setattr(os, "posix_fallocate", no_space)
    with pytest.raises(OSError, match="No space"):
        ControlBlock.create()
    assert set(os.listdir("/dev/shm")) == before  # the half-made block is gone


def test_the_process_knows_which_block_names_it_still_has_to_unlink() -> None:
    from numerous.tasks.backends.local._shm import linked_blocks

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
