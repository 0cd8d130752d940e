import time

from numerous.tasks import TaskControl, task


@task(max_parallel=2)
def count_words(tc: TaskControl, lines: list) -> int:
    total = 0
    for number, line in enumerate(lines, 1):
        if tc.should_stop:
            tc.log(f"stopped at line {number}", "warning")
            return total
        total += len(line.split())
        tc.update_progress(100 * number / len(lines), f"line {number}/{len(lines)}")
    tc.log(f"{total} words", "info")
    return total


@task
def watch(tc: TaskControl) -> str:
    tc.update_status("watching")
    while not tc.should_stop:
        time.sleep(0.01)
    return "stopped"
