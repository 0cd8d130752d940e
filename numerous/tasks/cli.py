"""The ``numerous-tasks`` command (also ``python -m numerous.tasks``).

    numerous-tasks run [--timeline PATH] MODULE:FUNCTION [key=value ...]   one instance of a task, live
    numerous-tasks run [--timeline PATH] path/to/script.py [args ...]      a script, every Session live
    numerous-tasks demo [--record-svg PATH] [--timeline PATH]              seven task instances, in < 10 s

Exit codes: 0 done, 1 the task (or script) failed, 2 a usage error (one line on
stderr), 130 interrupted by Ctrl-C. The first Ctrl-C stops the tasks gracefully (the
display shows them stopping), a second one kills them.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import signal
import sys
import traceback
from types import FrameType, TracebackType
from typing import Any, Dict, List, NoReturn, Optional, Sequence

__all__ = ["main"]

PROG = "numerous-tasks"
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
#: Columns of the demo's SVG: the width of the README's code blocks on GitHub, roughly.
SVG_WIDTH = 110

RUN_EPILOG = """\
TARGET is either MODULE:FUNCTION, a function decorated with @task in an importable
module (the current directory is on the import path), or a path to a Python script.

For MODULE:FUNCTION, ARGS are key=value keyword arguments. A value is read as JSON
when it parses as JSON (5, 2.5, true, null, "text", [1, 2], {"a": 1}) and is a plain
string otherwise. The live display goes to stderr; the result is printed on stdout as
JSON (or repr() when it is not JSON). Exit code 1 if the task fails (its traceback
from the worker is shown), 130 on Ctrl-C.

For a script, ARGS become its sys.argv[1:]; it runs as __main__, and every Session it
opens shows the live display.

--timeline PATH saves a picture of every instance's life (queued, running, stopping,
how it ended) when the sessions end: PATH.svg an SVG image, anything else an HTML page.
Options go before TARGET.

examples:
  numerous-tasks run mypackage.jobs:resize_images folder=photos size=512
  numerous-tasks run --timeline run.html scripts/nightly.py
  numerous-tasks run jobs:fit n=5 tags='["a","b"]' name='"007"' label=plain-text
  numerous-tasks run scripts/nightly.py --since yesterday
  python -m numerous.tasks run jobs:fit n=5
"""

DEMO_EPILOG = """\
Starts seven instances of five tasks in one Session: a download, a CPU-bound training
loop, three renders that share two slots (one waits as pending), a crawler that is
stopped midway and a log parser that fails with a real traceback. Under 10 seconds.
The tasks are in numerous/tasks/_demo.py.

examples:
  numerous-tasks demo
  numerous-tasks demo --record-svg docs/demo.svg
  numerous-tasks demo --timeline demo.html
"""


TIMELINE_HELP = "when done, save the instances' timeline at PATH (.html page, or .svg image)"


class UsageError(Exception):
    """A mistake in how the command was called: one line on stderr, exit code 2."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and the hint where to find help)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The command's argument parser (its subcommands each have --help)."""
    parser = _Parser(
        prog=PROG,
        description="Run numerous tasks with a live console display of their progress, logs and failures.",
        epilog="examples:\n  numerous-tasks demo\n  numerous-tasks run mymodule:mytask n=5\n"
        "  numerous-tasks run script.py\n\nRun 'numerous-tasks COMMAND --help' for a command's options.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from . import __version__

    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True
    run = commands.add_parser(
        "run",
        help="run one task instance (MODULE:FUNCTION) or a script, with the live display",
        description="Run one instance of a task, or a script, with the live display.",
        epilog=RUN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("--timeline", metavar="PATH", help=TIMELINE_HELP)
    run.add_argument("target", metavar="TARGET", help="MODULE:FUNCTION or path/to/script.py")
    run.add_argument(
        "args", metavar="ARGS", nargs=argparse.REMAINDER, help="key=value arguments, or the script's arguments"
    )
    demo = commands.add_parser(
        "demo",
        help="watch seven task instances run at once: progress, logs, a stop and a failure (< 10 s)",
        description="Watch several tasks run at once, with progress, logs, a stop and a failure.",
        epilog=DEMO_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    demo.add_argument(
        "--record-svg",
        metavar="PATH",
        help=f"also save what the demo leaves on screen as an SVG image at PATH ({SVG_WIDTH} columns)",
    )
    demo.add_argument("--timeline", metavar="PATH", help=TIMELINE_HELP)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command; returns the exit code (the console script exits with it)."""
    args = build_parser().parse_args(argv)
    previous_sigint = _install_sigint_note()
    try:
        if args.command == "demo":
            return _demo(args.record_svg, _check_timeline(args.timeline))
        return _run(args.target, list(args.args), _check_timeline(args.timeline))
    except UsageError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        # The session already stopped (or killed) its tasks and the display showed it.
        print(f"{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        if previous_sigint is not None:
            signal.signal(signal.SIGINT, previous_sigint)


def _check_timeline(path: Optional[str]) -> Optional[str]:
    """``path`` if a timeline can be saved there, else a UsageError (before anything runs)."""
    if path is not None:
        directory = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(directory):
            raise UsageError(f"cannot save the timeline: no such directory {directory!r}")
    return path


def _saved(timeline: Optional[str]) -> None:
    if timeline is not None and os.path.exists(timeline):
        print(f"saved {timeline}", file=sys.stderr)


# -- run ------------------------------------------------------------------------------------
def _run(target: str, args: List[str], timeline: Optional[str] = None) -> int:
    if target.endswith(".py") or (":" not in target and os.path.exists(target)):
        return _run_script(target, args, timeline)
    if ":" not in target:
        raise UsageError(f"expected MODULE:FUNCTION or a path to a .py script, not {target!r}")
    return _run_task(target, args, timeline)


def _run_task(target: str, raw_args: List[str], timeline: Optional[str]) -> int:
    from rich.console import Console

    from .display import TaskDisplay
    from .session import Session
    from .task import Task

    task = _load_task(target, Task)
    kwargs = parse_arguments(raw_args)
    try:
        task.check_arguments((), kwargs)
    except TypeError as error:
        raise UsageError(str(error)) from None
    with TaskDisplay(console=Console(stderr=True)):
        with Session(name=task.name, display=False, timeline=timeline):
            try:
                future = task.instance().start(**kwargs)
            except TypeError as error:  # an argument that cannot be pickled
                raise UsageError(str(error)) from None
            future.wait_done()
    _saved(timeline)
    if future.status != "completed":
        return EXIT_FAILED  # the display printed the failure and the worker's traceback
    print(_format_result(future.result()))
    return EXIT_OK


def _load_task(target: str, task_type: type) -> Any:
    module_name, _, attribute = target.partition(":")
    if not module_name or not attribute:
        raise UsageError(f"expected MODULE:FUNCTION, not {target!r}")
    # Like `python -m`: modules in the current directory can be run.
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name and (module_name == error.name or module_name.startswith(error.name + ".")):
            raise UsageError(f"no module named {module_name!r} (from {target!r})") from None
        raise  # the module exists but one of its imports does not: show where
    value: Any = module
    for part in attribute.split("."):
        try:
            value = getattr(value, part)
        except AttributeError:
            raise UsageError(f"module {module_name!r} has no attribute {attribute!r}") from None
    if not isinstance(value, task_type):
        kind = "function" if callable(value) else type(value).__name__
        raise UsageError(f"{target} is a {kind}, not a task: decorate it with @task")
    return value


def parse_arguments(raw_args: List[str]) -> Dict[str, Any]:
    """``["n=5", "name=x"]`` → ``{"n": 5, "name": "x"}``; values are JSON when they parse.

    Raises:
        UsageError: an argument is not ``key=value`` with an identifier as key, or a key
            is given twice.
    """
    kwargs: Dict[str, Any] = {}
    for raw in raw_args:
        key, equals, text = raw.partition("=")
        if not equals or not key.isidentifier():
            raise UsageError(f"argument {raw!r} is not key=value (e.g. n=5 or name='\"text\"')")
        if key in kwargs:
            raise UsageError(f"argument {key!r} is given twice")
        try:
            kwargs[key] = json.loads(text)
        except ValueError:
            kwargs[key] = text
    return kwargs


def _format_result(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(value)


def _run_script(path: str, args: List[str], timeline: Optional[str]) -> int:
    import runpy

    from . import display
    from .display.timeline import set_default_timeline

    if not os.path.isfile(path):
        raise UsageError(f"no such script: {path!r}")
    script = os.path.abspath(path)
    display.set_default(True)
    if timeline is not None:
        set_default_timeline(timeline)  # every session of the script, in one picture
    saved_argv, saved_path = sys.argv[:], sys.path[:]
    sys.argv = [path, *args]
    sys.path.insert(0, os.path.dirname(script))  # as `python script.py` does
    try:
        runpy.run_path(script, run_name="__main__")
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as error:  # the script's own failure: its traceback, as python shows it
        _print_script_traceback(error, script)
        return EXIT_FAILED
    finally:
        sys.argv, sys.path[:] = saved_argv, saved_path
        display.set_default(False)
        set_default_timeline(None)
        _saved(timeline)
    return EXIT_OK


def _print_script_traceback(error: BaseException, script: str) -> None:
    tb: Optional[TracebackType] = error.__traceback__
    # Drop this command's and runpy's frames: start where the script starts.
    while tb is not None and tb.tb_frame.f_code.co_filename != script:
        tb = tb.tb_next
    traceback.print_exception(type(error), error, tb or error.__traceback__, file=sys.stderr)


# -- demo -----------------------------------------------------------------------------------
def _demo(record_svg: Optional[str], timeline: Optional[str]) -> int:
    import io

    from rich.console import Console

    from ._demo import run_demo

    transcript: Optional[Console] = None
    if record_svg is not None:
        directory = os.path.dirname(os.path.abspath(record_svg))
        if not os.path.isdir(directory):
            raise UsageError(f"cannot save the SVG: no such directory {directory!r}")
        # A fixed width, so the image looks the same whatever terminal made it.
        transcript = Console(record=True, file=io.StringIO(), width=SVG_WIDTH, force_terminal=True)
    code = run_demo(Console(), transcript, timeline)
    if transcript is not None and record_svg is not None:
        transcript.save_svg(record_svg, title="numerous-tasks demo")
        print(f"saved {record_svg}", file=sys.stderr)
    _saved(timeline)
    return code


# -- Ctrl-C ---------------------------------------------------------------------------------
def _install_sigint_note() -> Any:
    """Let the display say what a Ctrl-C does, then interrupt as Python would.

    Only when Ctrl-C would raise KeyboardInterrupt anyway (the default handler) and we
    are on the main thread; returns the handler to put back, or None.
    """
    import threading

    if threading.current_thread() is not threading.main_thread():
        return None
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        return None

    def on_sigint(signum: int, frame: Optional[FrameType]) -> None:
        display = sys.modules.get(__package__ + ".display")
        if display is not None:
            display.note_interrupt()
        raise KeyboardInterrupt

    return signal.signal(signal.SIGINT, on_sigint)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
