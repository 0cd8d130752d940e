"""The package passes ``mypy --strict``; ``@task`` keeps signatures for type checkers.

tests/typing/sample_usage.py is typed usage that must type-check cleanly;
tests/typing/expected_errors.py marks the lines mypy must reject and with which codes.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import venv
from pathlib import Path
from typing import Dict, List, Set

import pytest

ROOT = Path(__file__).resolve().parent.parent
TYPING = Path(__file__).resolve().parent / "typing"
MYPY_LIMIT = 300.0  # a cold mypy run over the package takes ~20 s here; a loaded machine more

try:
    import mypy  # noqa: F401
except ImportError:  # pragma: no cover - depends on the environment
    pytestmark = pytest.mark.skip(reason="mypy is not installed (pip install -e '.[type]')")


def _mypy(*targets: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-pretty", "--no-error-summary", "--show-error-codes", *targets],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=MYPY_LIMIT,
    )


def _errors(output: str, path: str) -> Dict[int, Set[str]]:
    """Error codes per line of ``path`` in mypy's output (notes are left out)."""
    found: Dict[int, Set[str]] = {}
    for match in re.finditer(rf"^{re.escape(path)}:(\d+): error: .*\[([a-z-]+)\]$", output, re.MULTILINE):
        found.setdefault(int(match.group(1)), set()).add(match.group(2))
    return found


def _expected(path: Path) -> Dict[int, Set[str]]:
    expected: Dict[int, Set[str]] = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        marker = line.partition("# E: ")[2]
        if marker:
            codes = marker.split("  ")[0]
            expected[number] = {code.strip() for code in codes.split(",")}
    return expected


@pytest.mark.timeout(MYPY_LIMIT + 30)
def test_the_package_and_the_typed_usage_sample_pass_mypy_strict() -> None:
    result = _mypy("numerous", "tests/typing/sample_usage.py")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.timeout(MYPY_LIMIT + 30)
def test_mypy_rejects_wrong_calls_exactly_where_marked() -> None:
    path = "tests/typing/expected_errors.py"
    result = _mypy(path)
    assert result.returncode == 1, result.stdout + result.stderr
    found = _errors(result.stdout, path)
    expected = _expected(ROOT / path)
    assert len(expected) >= 15
    missing: List[str] = []
    for number, codes in expected.items():
        if codes - found.get(number, set()):
            missing.append(f"line {number}: {sorted(codes - found.get(number, set()))}")
    unexpected: List[str] = []
    for number, codes in found.items():
        if codes - expected.get(number, set()):
            unexpected.append(f"line {number}: {sorted(codes - expected.get(number, set()))}")
    assert not missing and not unexpected, f"missing: {missing}\nunexpected: {unexpected}\n{result.stdout}"


# -- an editable install (pip install -e .) is typed too ---------------------------------------
@pytest.fixture(scope="module")
def editable_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The python of a fresh venv holding nothing but an editable install of this checkout,
    made as ``pip install -e .`` makes it: the PEP 660 editable wheel setuptools builds,
    installed by pip (built here without isolation, so that no download is needed)."""
    root = tmp_path_factory.mktemp("editable")
    built = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, setuptools.build_meta as b; print(b.build_editable(sys.argv[1]))",
            str(root),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=MYPY_LIMIT,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    wheel = root / built.stdout.strip().splitlines()[-1]
    venv.EnvBuilder(with_pip=False, symlinks=True).create(root / "venv")
    python = root / "venv" / "bin" / "python"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", str(wheel)],
        capture_output=True,
        text=True,
        timeout=MYPY_LIMIT,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    return python


def _outside_the_checkout(tmp_path: Path) -> Path:
    sample = tmp_path / "sample_usage.py"
    shutil.copy(TYPING / "sample_usage.py", sample)
    return sample


@pytest.mark.timeout(MYPY_LIMIT + 30)
def test_an_editable_install_is_a_plain_path_that_mypy_follows(editable_venv: Path, tmp_path: Path) -> None:
    # setuptools' import-hook finder (its default for our flat layout) is invisible to
    # type checkers: numerous.tasks did not resolve and every type became Any.
    site = subprocess.run(
        [str(editable_venv), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    [pth] = Path(site.stdout.strip()).glob("__editable__*.pth")
    assert pth.read_text().split() == [str(ROOT)]
    sample = _outside_the_checkout(tmp_path)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-incremental",
            "--python-executable",
            str(editable_venv),
            sample.name,
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=MYPY_LIMIT,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.timeout(MYPY_LIMIT + 30)
def test_pyright_resolves_an_editable_install(editable_venv: Path, tmp_path: Path) -> None:
    pyright = shutil.which("pyright", path=str(Path(sys.executable).parent))
    if pyright is None:
        pytest.skip("pyright is not installed (pip install -e '.[type]')")
    sample = _outside_the_checkout(tmp_path)
    result = subprocess.run(
        [pyright, "--pythonpath", str(editable_venv), sample.name],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=MYPY_LIMIT,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 errors" in result.stdout
