"""Every ``py`` example of the user-facing spec, run as an unguarded script.

Each block is written verbatim to a file and run with ``python file.py`` in a fresh
interpreter (``python -i file.py`` when the test also reads variables the example sets
but never prints: the script runs exactly as with ``python file.py``, then the test's
one line reads the globals). What the comments say is checked: ``print(x)  # "text"``
must print ``text``, ``# [0, 2, 4, 6, 8]`` must print that value, and so on.

Not every block is self-contained. These use names they never define, and run with a
small prelude that defines exactly those names (checked: a prelude may bind nothing
else, except ``_private`` helpers):

* "Session Management" — ``task_a``, ``task_b``, ``data_chunk_1``, ``data_chunk_2``
* "Direct Execution" — ``task`` (no import)
* "Local Task Instances" — ``Session``, ``development_task`` (from the block before)
* "Remote Execution" — ``Session``, ``production_task``, ``large_dataset``
* "Batch Processing" — ``task``, ``TaskControl``, ``Session``, ``process_single_item``,
  ``data_batches``
* "Pipeline Processing" — ``task``, ``TaskControl``, ``Session``, ``raw_data``

("Task Control and Progress Tracking" calls an undefined ``process_item`` too, but only
inside the task body, and the block never runs the task: it runs with no prelude.)
"""

from __future__ import annotations

import ast
import builtins
import os
import re
import subprocess
import symtable
import sys
import textwrap
from pathlib import Path
from typing import Any, Dict, List, Optional, Set, Tuple

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_SPEC = REPO.parent / "shared" / "spec" / "tasks.md"
VENDORED_SPEC = Path(__file__).resolve().parent / "spec" / "tasks.md"
SPEC = SHARED_SPEC if SHARED_SPEC.exists() else VENDORED_SPEC


def spec_blocks() -> List[Tuple[str, str]]:
    """(id, code) for every ```py block, the id naming the section it sits in."""
    text = SPEC.read_text(encoding="utf-8")
    blocks = []
    for number, match in enumerate(re.finditer(r"```py\n(.*?)```", text, re.S)):
        headings = re.findall(r"^#+ (.+)$", text[: match.start()], re.M)
        section = re.sub(r"[^a-z0-9]+", "-", headings[-1].lower()).strip("-") if headings else "top"
        blocks.append((f"{number:02d}-{section}", match.group(1)))
    return blocks


BLOCKS = dict(spec_blocks())

# The names each non-self-contained block needs, keyed by its section.
PRELUDES: Dict[str, str] = {
    "session-management": """
        from numerous.tasks import task as _task

        @_task
        def task_a(chunk):
            return sum(chunk)

        @_task
        def task_b(chunk):
            return max(chunk)

        data_chunk_1 = [1, 2, 3]
        data_chunk_2 = [4, 5, 6]
    """,
    "1-direct-execution-development": """
        from numerous.tasks import task
    """,
    "2-local-task-instances-testing": """
        from numerous.tasks import Session
        from numerous.tasks import task as _task

        @_task
        def development_task(value: int) -> int:
            return value * 2
    """,
    "3-remote-execution-production": """
        from numerous.tasks import Session
        from numerous.tasks import task as _task

        @_task
        def production_task(data: list) -> int:
            return len(data)

        large_dataset = list(range(1000))
    """,
    "batch-processing": """
        from numerous.tasks import Session, TaskControl, task

        def process_single_item(item):
            return item * 10

        data_batches = [[1, 2, 3], [4, 5]]
    """,
    "pipeline-processing": """
        from numerous.tasks import Session, TaskControl, task

        raw_data = {"rows": 3}
    """,
}

# Values the comments state for variables the example sets but never prints.
STATED_VALUES: Dict[str, Dict[str, Any]] = {
    "session-management": {"result1": 6, "result2": 6},  # from the prelude's tasks
    "1-direct-execution-development": {"result": 10},  # "Returns 10 immediately"
    "2-local-task-instances-testing": {"result": 10},  # "Returns 10"
    "3-remote-execution-production": {"result": 1000},  # the prelude's task
    "task-cancellation": {"result": "Cancelled"},  # 'Will be "Cancelled"'
    "error-handling": {"result1": "Task completed successfully"},
    "batch-processing": {"results": [{"batch_id": "batch_0", "processed": 3}, {"batch_id": "batch_1", "processed": 2}]},
    "pipeline-processing": {
        "final_result": {
            "stored": {"transformed": {"validated": {"rows": 3}, "stage": 1}, "stage": 2},
            "stage": 3,
        }
    },
}

# Comments in prose, and what the printed line must be.
PROSE_COMMENTS = {"ValueError instance": "Future error: Simulated error"}


def section_of(block_id: str) -> str:
    return block_id.split("-", 1)[1]


def bound_names(code: str) -> Set[str]:
    """Names a module binds at top level (assignments, imports, defs)."""
    table = symtable.symtable(code, "<block>", "exec")
    return {s.get_name() for s in table.get_symbols() if s.is_assigned() or s.is_imported()}


def free_names(code: str) -> Set[str]:
    """Global names the code reads anywhere but never binds at top level."""
    table = symtable.symtable(code, "<block>", "exec")
    used: Set[str] = set()

    def visit(t: symtable.SymbolTable) -> None:
        for symbol in t.get_symbols():
            if symbol.is_referenced() and (t.get_type() == "module" or symbol.is_global()):
                used.add(symbol.get_name())
        for child in t.get_children():
            visit(child)

    visit(table)
    return used - bound_names(code) - set(dir(builtins))


def expected_lines(code: str) -> List[Tuple[str, Any]]:
    """What each commented ``print(...)`` must print: ("line", text) or ("value", v)."""
    expectations = []
    for line in code.splitlines():
        match = re.match(r"\s*print\((.*)\)\s*#\s*(.+)$", line)
        if not match:
            continue
        argument, comment = match.group(1), match.group(2).strip()
        if comment in PROSE_COMMENTS:
            expectations.append(("line", PROSE_COMMENTS[comment]))
            continue
        value = ast.literal_eval(comment)
        node = ast.parse(argument, mode="eval").body
        if isinstance(node, ast.JoinedStr) and isinstance(node.values[0], ast.Constant):
            prefix = node.values[0].value
            text = str(value)
            expectations.append(("line", text if text.startswith(prefix) else prefix + text))
        elif isinstance(value, str):
            expectations.append(("line", value))
        else:
            expectations.append(("value", value))
    return expectations


def run_block(
    code: str, tmp_path: Path, read_globals: Optional[List[str]], backend: str = "local"
) -> subprocess.CompletedProcess:
    script = tmp_path / "example.py"
    script.write_text(code, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "NUMEROUS_TASK_BACKEND"}
    if backend != "local":  # the Dask cluster's address is in the environment already
        env["NUMEROUS_TASK_BACKEND"] = backend
    if read_globals is None:
        command, stdin = [sys.executable, str(script)], None
    else:  # run the script as is, then print the named globals
        command = [sys.executable, "-i", str(script)]
        stdin = f"print('__GLOBALS__', repr({{n: globals().get(n) for n in {read_globals!r}}}))\n"
    return subprocess.run(command, input=stdin, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=60)


def test_spec_has_the_examples_we_check() -> None:
    sections = {section_of(block_id) for block_id in BLOCKS}
    assert len(BLOCKS) >= 13
    assert set(PRELUDES) <= sections and set(STATED_VALUES) <= sections


@pytest.mark.skipif(not SHARED_SPEC.exists(), reason="the shared spec is not beside this checkout")
def test_vendored_spec_matches_the_shared_one() -> None:
    assert VENDORED_SPEC.read_bytes() == SHARED_SPEC.read_bytes(), "tests/spec/tasks.md is stale"


@pytest.mark.parametrize("block_id", sorted(BLOCKS))
@pytest.mark.timeout(90)
def test_preludes_define_only_missing_names(block_id: str) -> None:
    code = BLOCKS[block_id]
    prelude = textwrap.dedent(PRELUDES.get(section_of(block_id), ""))
    missing = free_names(code)
    provided = {name for name in bound_names(prelude) if not name.startswith("_")}
    assert provided <= missing, f"the prelude binds names the block defines or never uses: {provided - missing}"
    if prelude:
        assert missing - {"process_item"} <= provided, f"still undefined: {missing - provided}"


@pytest.mark.parametrize("block_id", sorted(BLOCKS))
@pytest.mark.timeout(90)
def test_spec_example_runs_as_a_script(block_id: str, tmp_path: Path, task_backend: str) -> None:
    section = section_of(block_id)
    code = BLOCKS[block_id]
    prelude = textwrap.dedent(PRELUDES.get(section, ""))
    stated = STATED_VALUES.get(section)
    result = run_block(prelude + code, tmp_path, sorted(stated) if stated else None, task_backend)
    assert "Traceback (most recent call last)" not in result.stderr, result.stderr
    assert result.returncode == 0, result.stderr
    printed = [line for line in result.stdout.splitlines() if not line.startswith("__GLOBALS__")]
    expectations = expected_lines(code)
    assert len(printed) == len(expectations), (printed, expectations)
    for line, (kind, expected) in zip(printed, expectations):
        if kind == "line":
            assert line == expected
        else:
            assert ast.literal_eval(line) == expected
    if stated:
        [dump] = [line for line in result.stdout.splitlines() if line.startswith("__GLOBALS__")]
        assert ast.literal_eval(dump[len("__GLOBALS__ ") :]) == stated
