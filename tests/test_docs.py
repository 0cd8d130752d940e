"""The documentation: its table names every environment variable the library reads, and
its tox env builds the reference with warnings as errors, cross-references checked."""

from __future__ import annotations

import ast
import configparser
import re
import subprocess
import sys
from pathlib import Path
from typing import Set

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "numerous"
ENVIRONMENT_PAGE = ROOT / "docs" / "environment.md"


def _variables_in_the_code() -> Set[str]:
    found: Set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        found |= set(re.findall(r"""["'](NUMEROUS_[A-Z0-9_]+)["']""", path.read_text(encoding="utf-8")))
    return found


def _variables_in_the_tables() -> Set[str]:
    rows = [line for line in ENVIRONMENT_PAGE.read_text(encoding="utf-8").splitlines() if line.startswith("| `")]
    return {re.match(r"\| `([A-Z0-9_]+)`", row).group(1) for row in rows}  # type: ignore[union-attr]


def test_the_environment_page_lists_every_variable_the_library_reads_and_no_other() -> None:
    in_code = _variables_in_the_code()
    assert {"NUMEROUS_TASK_BACKEND", "NUMEROUS_DASK_ADDRESS", "NUMEROUS_INLINE_PICKLE"} <= in_code
    assert _variables_in_the_tables() == in_code


def test_the_docs_env_builds_with_warnings_as_errors_and_is_part_of_the_default_run() -> None:
    config = configparser.ConfigParser(interpolation=None)
    config.read(ROOT / "tox.ini", encoding="utf-8")
    assert "docs" in [env.strip() for env in config["tox"]["envlist"].split(",")]
    command = config["testenv:docs"]["commands"].split()
    assert command[:3] == ["python", "-m", "sphinx"] and {"-W", "-n"} <= set(command)


def test_every_page_is_in_the_table_of_contents() -> None:
    index = (ROOT / "docs" / "index.md").read_text(encoding="utf-8")
    pages = {path.stem for path in (ROOT / "docs").glob("*.md")} | {path.stem for path in (ROOT / "docs").glob("*.rst")}
    toctree = re.search(r"```\{toctree\}\n(.*?)```", index, re.S)
    assert toctree is not None
    listed = {line.strip() for line in toctree.group(1).splitlines() if line.strip() and not line.startswith(":")}
    assert listed == pages - {"index"}


@pytest.mark.timeout(60)
def test_the_example_on_the_front_page_prints_what_it_says(tmp_path: Path) -> None:
    index = (ROOT / "docs" / "index.md").read_text(encoding="utf-8")
    [code] = re.findall(r"```python\n(.*?)```", index, re.S)
    promised = [ast.literal_eval(m) for m in re.findall(r"print\(.*\)\s+#\s*(.+)$", code, re.M)]
    (tmp_path / "example.py").write_text(code)
    done = subprocess.run([sys.executable, "example.py"], capture_output=True, text=True, timeout=50, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert [ast.literal_eval(line) for line in done.stdout.splitlines()] == promised == [[10, 10, 10]]
