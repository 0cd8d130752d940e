"""The example scripts in examples/ run as a new user would run them."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.mark.timeout(45)
def test_quickstart_runs_and_shows_results_stop_and_traceback(tmp_path: Path) -> None:
    script = EXAMPLES / "quickstart.py"
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=30, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "result: alpha finished 5 steps" in out
    assert "result: beta finished 8 steps" in out
    stopped = re.search(r"^result: gamma stopped after (\d+) steps$", out, re.M)
    assert stopped and int(stopped.group(1)) < 50, out  # stopped midway, returned normally
    assert "statuses: ['completed', 'completed', 'completed', 'failed']" in out
    assert "  progress 100.0%  alpha: step 5/5" in out.splitlines()  # the handler, in this process
    assert "  log   [warning] gamma: stopped at step" in out
    # The traceback printed by traceback.print_exception holds the worker's frame.
    source = script.read_text(encoding="utf-8").splitlines()
    [failing] = [n for n, line in enumerate(source, 1) if 'key, value = text.split("=")' in line]
    assert f'quickstart.py", line {failing}, in parse_config' in result.stderr, result.stderr
    assert "ValueError: not enough values to unpack" in result.stderr


README = EXAMPLES.parent / "README.md"


def readme_python_blocks() -> list:
    import re

    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("index", range(len(readme_python_blocks())))
def test_readme_snippets_run_and_print_what_they_say(index: int, tmp_path: Path) -> None:
    import ast
    import re

    code = readme_python_blocks()[index]
    (tmp_path / "snippet.py").write_text(code)
    result = subprocess.run([sys.executable, "snippet.py"], capture_output=True, text=True, timeout=50, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    promised = [ast.literal_eval(m) for m in re.findall(r"print\(.*\)\s+#\s*(?:.*: )?(.+)$", code, re.M)]
    assert [ast.literal_eval(line) for line in result.stdout.splitlines()] == promised
