import pytest

from numerous.tasks import TaskCancelledError
from sample_tasks.tasks import count_words, watch


def test_count_words_reports_progress_and_logs(task_session, recorded_task_control):
    future = count_words.instance().start(["a b", "c d e"])
    assert future.result(timeout=30) == 5
    assert recorded_task_control.logs_for(future) == ["5 words"]
    assert recorded_task_control.progress_for(future)[-1] == 100.0
    assert recorded_task_control.states_for(future) == ["pending", "running", "completed"]


def test_a_bad_line_fails_with_the_task_s_own_error(task_session):
    with pytest.raises(AttributeError, match="split"):
        count_words.instance().start([42]).result(timeout=30)


def test_watch_stops_when_asked(task_session, recorded_task_control):
    instance = watch.instance()
    future = instance.start()
    recorded_task_control.wait_for_status(future, "watching")  # an event, not a sleep
    instance.stop()
    assert future.result(timeout=30) == "stopped"


@pytest.mark.task_backend("inline")  # a queueing rule: one fast backend is enough
def test_a_waiting_instance_can_be_cancelled(task_session, recorded_task_control):
    first = watch.instance()
    running = first.start()
    waiting = watch.instance().start()  # watch runs one at a time: this one waits
    assert waiting.cancel() is True
    first.stop()
    assert running.result(timeout=30) == "stopped"
    with pytest.raises(TaskCancelledError):
        waiting.result(timeout=30)
