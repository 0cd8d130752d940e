"""The pytest plugin, run in pytest subprocesses (``pytester``): its fixtures work on each
backend, its leak check fails a test that leaks, the option and the marker choose the
backends, and it runs under pytest-xdist."""

from __future__ import annotations

import textwrap

import pytest

pytest_plugins = ["pytester"]

#: Seconds an inner pytest run may take (each starts an interpreter and workers).
INNER_TIMEOUT = 120

TASKS = textwrap.dedent(
    """
    import subprocess, sys, threading, time
    from numerous.tasks import TaskControl, task

    @task(max_parallel=2)
    def count(tc: TaskControl, n: int) -> int:
        tc.log("counting", "info")
        for i in range(n):
            tc.update_progress(100 * (i + 1) / n, f"{i + 1}/{n}")
        tc.log("done", "info")
        return n

    @task
    def until_stopped(tc: TaskControl) -> str:
        tc.update_status("ready")
        while not tc.should_stop:
            time.sleep(0.005)
        return "stopped"

    @task
    def deaf(tc: TaskControl, seconds: float) -> str:
        tc.update_status("ready")
        time.sleep(seconds)
        return "late"
    """
)


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A pytester dir with the tasks module, the backend variables cleared."""
    for name in ("NUMEROUS_TASK_BACKEND", "NUMEROUS_INLINE_PICKLE", "NUMEROUS_DASK_ADDRESS"):
        monkeypatch.delenv(name, raising=False)
    pytester.makepyfile(mytasks=TASKS)
    return pytester


def test_the_plugin_is_registered_through_its_entry_point(request: pytest.FixtureRequest) -> None:
    plugin = request.config.pluginmanager.get_plugin("numerous_tasks")
    assert plugin is not None and plugin.__name__ == "numerous.tasks.testing.plugin"


@pytest.mark.timeout(INNER_TIMEOUT)
def test_fixtures_run_a_test_once_per_backend_and_record_what_tasks_report(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_ok="""
        import os
        from mytasks import count

        def test_count(task_session, task_backend, recorded_task_control):
            assert os.environ["NUMEROUS_TASK_BACKEND"] == task_backend
            assert task_session.is_open
            future = count.instance().start(3)
            assert future.result(timeout=30) == 3
            rec = recorded_task_control
            assert rec.logs_for(future) == ["counting", "done"]
            assert rec.progress_for(future)[-1] == 100.0
            assert rec.statuses_for(future)[-1] == "3/3"
            assert rec.states_for(future) == ["pending", "running", "completed"]
            assert rec.events_for(count)  # by task: every instance of it

        def test_no_fixture_no_parametrization():
            pass
        """
    )
    result = project.runpytest_subprocess("--task-backend", "local,inline", "-v")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines_random(
        ["*test_count?local? PASSED*", "*test_count?inline? PASSED*", "*task backends local, inline*"]
    )


@pytest.mark.timeout(INNER_TIMEOUT)
def test_the_leak_check_fails_each_test_that_leaks(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_leaks="""
        import os, subprocess, sys, time
        import pytest
        from mytasks import count, deaf, until_stopped

        def test_clean(task_session):
            assert count.instance().start(2).result(timeout=30) == 2

        def test_instance_left_running(task_session, recorded_task_control):
            future = until_stopped.instance().start()
            recorded_task_control.wait_for_status(future, "ready")

        def test_child_process_left(task_session):
            subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])

        def test_fd_left_open(task_session):
            os.open(os.devnull, os.O_RDONLY)

        def test_shm_block_left(task_session, monkeypatch):
            # Arenas have no name; where there is no memfd, a segment's name lives for
            # microseconds. Make removing it fail, so that one is left.
            import _posixshmem
            from numerous.tasks.backends.local._shm import Arena

            def refuse(name):
                raise PermissionError(1, "refused by the test", name)

            monkeypatch.delattr(os, "memfd_create")
            monkeypatch.setattr(_posixshmem, "shm_unlink", refuse)
            with pytest.raises(PermissionError):
                Arena.create()

        @pytest.mark.task_backend("inline")
        def test_thread_left_by_a_task_that_ignores_its_stop(task_session, recorded_task_control):
            instance = deaf.instance()
            future = instance.start(3.0)
            recorded_task_control.wait_for_status(future, "ready")
            instance.stop(timeout=0.01)
            future.wait_done(30)
        """
    )
    result = project.runpytest_subprocess("--task-backend", "local")
    result.assert_outcomes(passed=6, errors=5)
    result.stdout.fnmatch_lines_random(
        [
            "*instances still pending or running at the end of the test*until_stopped*running*",
            "*child processes left running*",
            "*file descriptors left open*/dev/null*",
            "*/dev/shm blocks left behind*",
            "*library threads still running*numerous-inline-abandoned-*",
        ]
    )
    assert "test_clean" not in "\n".join(line for line in result.outlines if "ERROR" in line)


@pytest.mark.timeout(INNER_TIMEOUT)
def test_the_marker_pins_backends_and_passes_the_pickle_option(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_pinned="""
        import os, threading
        import pytest
        from numerous.tasks import task

        @task
        def same(value):
            return value

        @pytest.mark.task_backend("inline", pickle=False)
        def test_by_reference(task_session, task_backend):
            lock = threading.Lock()
            assert task_backend == "inline"
            assert os.environ["NUMEROUS_INLINE_PICKLE"] == "0"
            assert same.instance().start(lock).result(timeout=30) is lock

        @pytest.mark.task_backend("local", "inline")
        def test_both(task_backend):
            assert task_backend in ("local", "inline")

        @pytest.mark.parametrize("task_backend", ["inline"], indirect=True)
        def test_parametrized_by_hand(task_backend):
            assert task_backend == "inline"
        """
    )
    result = project.runpytest_subprocess("--task-backend", "local", "-v")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines_random(
        ["*test_by_reference?inline? PASSED*", "*test_both?local? PASSED*", "*test_both?inline? PASSED*"]
    )


@pytest.mark.timeout(INNER_TIMEOUT)
def test_dask_is_skipped_with_a_reason_when_it_cannot_run(project: pytest.Pytester) -> None:
    project.makepyfile(test_dask="def test_it(task_session):\n    pass\n")
    result = project.runpytest_subprocess("--task-backend", "dask", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*SKIPPED*dask task backend*"])


@pytest.mark.timeout(INNER_TIMEOUT)
def test_an_unknown_backend_name_is_a_usage_error(project: pytest.Pytester) -> None:
    project.makepyfile(test_x="def test_it(task_backend):\n    pass\n")
    result = project.runpytest_subprocess("--task-backend", "remote")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*'remote' names no task backend*local, inline, dask*"])


@pytest.mark.timeout(INNER_TIMEOUT)
def test_the_ini_setting_and_the_environment_choose_the_default(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.makepyfile(test_x="def test_it(task_backend):\n    pass\n")
    monkeypatch.setenv("NUMEROUS_TASK_BACKEND", "inline")
    project.runpytest_subprocess("-v").stdout.fnmatch_lines(["*test_it?inline? PASSED*"])
    project.makeini("[pytest]\ntask_backends = local inline\n")
    project.runpytest_subprocess("-v").stdout.fnmatch_lines(["*test_it?local? PASSED*", "*test_it?inline? PASSED*"])


@pytest.mark.timeout(INNER_TIMEOUT)
def test_it_runs_under_xdist_with_two_workers(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_many="""
        import pytest
        from mytasks import count, until_stopped

        @pytest.mark.parametrize("n", range(4))
        def test_count(task_session, recorded_task_control, n):
            assert count.instance().start(n + 1).result(timeout=30) == n + 1

        def test_stop(task_session, recorded_task_control):
            instance = until_stopped.instance()
            future = instance.start()
            recorded_task_control.wait_for_status(future, "ready")
            instance.stop()
            assert future.result(timeout=30) == "stopped"
        """
    )
    result = project.runpytest_subprocess("-n", "2", "--task-backend", "local,inline")
    result.assert_outcomes(passed=10)


@pytest.mark.timeout(60)
def test_recorded_task_control_forwards_to_the_previous_handler_and_restores_it(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_forward="""
        import logging
        from numerous.tasks import get_task_control_handler
        from mytasks import count

        def test_direct_call(recorded_task_control, caplog):
            caplog.set_level(logging.INFO, logger="numerous.tasks")
            assert get_task_control_handler() is recorded_task_control
            assert count(2) == 2  # a direct call reports too, as instance "direct"
            assert recorded_task_control.logs_for("direct") == ["counting", "done"]
            assert [r.getMessage() for r in caplog.records] == ["counting", "done"]

        def test_restored():
            from numerous.tasks.testing import RecordingTaskControlHandler
            assert not isinstance(get_task_control_handler(), RecordingTaskControlHandler)
        """
    )
    project.runpytest_subprocess("-p", "no:randomly").assert_outcomes(passed=2)
