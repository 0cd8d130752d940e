"""The README's test command and .ci/run agree: CI runs that command and nothing else, with
tox's strictness turned on; without it, a machine that lacks some of the Pythons skips
them, says so, and passes."""

from __future__ import annotations

import configparser
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import List

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
CI_RUN = ROOT / ".ci" / "run"
STRICT = "--skip-missing-interpreters=false"


def _readme_test_command() -> str:
    """The tox line of the README's first shell block (the one at the top)."""
    first_block = re.search(r"```bash\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    assert first_block is not None
    [line] = [line for line in first_block.group(1).splitlines() if "-m tox" in line]
    return line.strip()


def _ci_commands() -> List[str]:
    """The lines of .ci/run after its PATH preparation (the `fi` that closes it)."""
    lines = [line.strip() for line in CI_RUN.read_text(encoding="utf-8").splitlines()]
    after = lines[lines.index("fi") + 1 :]
    return [line for line in after if line and not line.startswith("#")]


def _tox_config() -> configparser.ConfigParser:
    config = configparser.ConfigParser(interpolation=None)
    config.read(ROOT / "tox.ini", encoding="utf-8")
    return config


def _envlist() -> List[str]:
    return [env.strip() for env in _tox_config()["tox"]["envlist"].split(",")]


def test_ci_runs_the_readme_test_command_and_only_it_with_strictness_on() -> None:
    readme = _readme_test_command()
    assert readme == "python -m pip install tox && python -m tox"
    assert _ci_commands() == [f"{readme} {STRICT}"]


def test_the_development_section_shows_what_ci_runs() -> None:
    text = README.read_text(encoding="utf-8").split("\n## Development\n", 1)[1]
    assert f"python -m tox {STRICT}" in text
    assert "python -m pytest -n 2 -q" in text and re.search(r"python -m tox -e py3\d+ ", text)


def test_tox_skips_missing_interpreters_unless_told_not_to() -> None:
    assert _tox_config()["tox"]["skip_missing_interpreters"].strip() == "true"


def test_ci_puts_every_python_of_the_envlist_on_path() -> None:
    pattern = re.search(r"grep -E '([^']+)'", CI_RUN.read_text(encoding="utf-8"))
    assert pattern is not None
    versions = [env[2] + "." + env[3:] for env in _envlist() if re.fullmatch(r"py3\d+", env)]
    assert versions == ["3.9", "3.10", "3.11", "3.12", "3.13"]
    for version in versions:
        assert re.match(pattern.group(1), f"{version}.4"), version
    assert not re.match(pattern.group(1), "3.8.18") and not re.match(pattern.group(1), "3.14.0")


# -- what tox itself does with the two commands --------------------------------------------------
def _missing_python_env() -> str:
    """An env of the envlist whose Python is not the one running these tests."""
    running = f"py3{sys.version_info[1]}"
    return next(env for env in _envlist() if re.fullmatch(r"py3\d+", env) and env != running)


def _tox_with_one_python(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run tox as the README does, on a PATH that has this Python only, with a second env
    that passes at once (lint, made trivial): the machine that has just one Python."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "python").unlink(missing_ok=True)
    (bin_dir / "python").symlink_to(sys.executable)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TOX_", "PIP_", "VIRTUALENV_"))}
    env["PATH"] = str(bin_dir)
    command = [sys.executable, "-m", "tox", "-c", str(ROOT / "tox.ini"), "--workdir", str(tmp_path / "tox")]
    command += ["-x", "testenv:lint.deps=", "-x", "testenv:lint.commands=python -c pass", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=240, env=env, cwd=tmp_path)


@pytest.mark.timeout(300)
def test_the_readme_command_skips_a_missing_python_and_the_ci_command_fails_on_it(tmp_path: Path) -> None:
    pytest.importorskip("tox")
    missing = _missing_python_env()
    readme_args = shlex.split(_readme_test_command().split("&&")[1])[3:]  # after "python -m tox"
    ci_args = shlex.split(_ci_commands()[0].split("&&")[1])[3:]
    readme = _tox_with_one_python(tmp_path, *readme_args, "-e", f"{missing},lint")
    assert readme.returncode == 0, readme.stdout + readme.stderr
    assert f"{missing}: SKIP" in readme.stdout and "lint: OK" in readme.stdout
    ci = _tox_with_one_python(tmp_path, *ci_args, "-e", f"{missing},lint")
    assert ci.returncode != 0
    assert f"{missing}: failed with could not find python interpreter matching any of the specs {missing}" in ci.stdout
