"""The sample project (tests/sample_project), installed into a temporary venv like a
user's project, passes its plugin-only tests on every backend, also under pytest-xdist;
and the README's "Testing your tasks" example is its code, verbatim."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sysconfig
import venv
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

import pytest

SAMPLE = Path(__file__).resolve().parent / "sample_project"
README = SAMPLE.parent.parent / "README.md"
#: Seconds one pip or pytest run in the sample venv may take.
STEP_TIMEOUT = 240


def _env(dask_address: Optional[str] = None) -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NUMEROUS_", "PYTEST_", "PIP_"))}
    env.pop("PYTHONPATH", None)
    env.update(PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")
    if dask_address:
        env["NUMEROUS_DASK_ADDRESS"] = dask_address
    return env


def _run(command: List[str], cwd: Path, dask_address: Optional[str] = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, cwd=cwd, env=_env(dask_address), capture_output=True, text=True, timeout=STEP_TIMEOUT
    )


@pytest.fixture(scope="module")
def sample_venv(tmp_path_factory: pytest.TempPathFactory) -> Tuple[Path, Path]:
    """(the venv's python, the project's copy): the project installed from its local path
    only, the running interpreter's packages (numerous-tasks, pytest, xdist, setuptools)
    reused through a .pth file instead of being downloaded again."""
    root = tmp_path_factory.mktemp("sample")
    project = root / "project"
    shutil.copytree(SAMPLE, project, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "build"))
    venv.EnvBuilder(with_pip=False, symlinks=True).create(root / "venv")
    python = root / "venv" / "bin" / "python"
    purelib = _run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], root)
    assert purelib.returncode == 0, purelib.stderr
    outer = {sysconfig.get_path("purelib"), sysconfig.get_path("platlib")}
    # addsitedir, not a bare path: the outer env's own .pth files (an editable install's
    # finder) are processed too.
    lines = [f"import site; site.addsitedir({path!r})" for path in sorted(outer)]
    (Path(purelib.stdout.strip()) / "_outer_env.pth").write_text("\n".join(lines) + "\n")
    install = _run(
        [str(python), "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index", str(project)], root
    )
    assert install.returncode == 0, install.stdout + install.stderr
    return python, project


@pytest.fixture(scope="module")
def sample_cluster(sample_venv: Tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The address of a real Dask cluster whose workers import the sample project, as a
    user's cluster would have it installed."""
    pytest.importorskip("distributed")
    from dask_cluster import running_cluster

    _, project = sample_venv
    with running_cluster(tmp_path_factory.mktemp("sample-cluster"), python_path=[str(project)]) as cluster:
        yield cluster.address


@pytest.mark.timeout(600)
def test_the_sample_project_is_installed_in_its_own_venv(sample_venv: Tuple[Path, Path]) -> None:
    python, _ = sample_venv
    where = _run(
        [str(python), "-c", "import sys, sample_tasks; print(sample_tasks.__file__); print(sys.prefix)"], python.parent
    )
    assert where.returncode == 0, where.stderr
    module_file, prefix = where.stdout.split()
    assert Path(module_file).is_relative_to(Path(prefix))
    assert Path(prefix) == python.parent.parent


@pytest.mark.timeout(600)
def test_the_sample_project_passes_on_every_backend(sample_venv: Tuple[Path, Path], sample_cluster: str) -> None:
    python, project = sample_venv
    backends = ["local", "inline", "dask"]
    result = _run(
        [
            str(python),
            "-m",
            "pytest",
            "-v",
            "-p",
            "no:cacheprovider",
            "--task-backend",
            ",".join(backends),
            str(project / "tests"),
        ],
        project.parent,
        dask_address=sample_cluster,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for backend in backends:
        assert f"test_watch_stops_when_asked[{backend}] PASSED" in result.stdout
    passed = int(re.search(r"(\d+) passed", result.stdout).group(1))  # type: ignore[union-attr]
    assert passed == 3 * len(backends) + 1  # three tests per backend, one pinned to inline


@pytest.mark.timeout(600)
def test_the_sample_project_passes_under_xdist(sample_venv: Tuple[Path, Path]) -> None:
    python, project = sample_venv
    result = _run(
        [str(python), "-m", "pytest", "-n", "2", "-p", "no:cacheprovider", str(project / "tests")], project.parent
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "7 passed" in result.stdout  # the ini setting: local and inline


def _readme_section() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index("## Testing your tasks")
    end = text.index("\n## ", start + 1)
    return text[start:end]


def test_the_readme_example_is_the_sample_project_verbatim() -> None:
    blocks = re.findall(r"```(?:python|py)\n(.*?)```", _readme_section(), re.S)
    assert len(blocks) == 2, blocks
    assert blocks[0] == (SAMPLE / "sample_tasks" / "tasks.py").read_text(encoding="utf-8")
    assert blocks[1] == (SAMPLE / "tests" / "test_tasks.py").read_text(encoding="utf-8")
