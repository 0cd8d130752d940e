"""Package metadata, and the README's install commands: they work from a checkout (the
package is not on PyPI yet), and name extras that exist."""

from __future__ import annotations

import importlib.metadata
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"


def test_the_license_is_an_spdx_expression_with_its_file() -> None:
    metadata = importlib.metadata.metadata("numerous-tasks")
    assert metadata["License-Expression"] == "MIT"
    assert metadata.get_all("License-File") == ["LICENSE"]
    assert (ROOT / "LICENSE").read_text(encoding="utf-8").startswith("MIT License")
    assert not [c for c in metadata.get_all("Classifier") or [] if c.startswith("License ::")]  # superseded
    assert "Development Status :: 3 - Alpha" in (metadata.get_all("Classifier") or [])


def test_readme_install_commands_work_from_a_checkout_and_name_real_extras() -> None:
    extras = set(importlib.metadata.metadata("numerous-tasks").get_all("Provides-Extra") or [])
    commands = re.findall(r"pip install ([^`\n]*)", README.read_text(encoding="utf-8"))
    ours = [c for c in commands if "numerous-tasks" in c or c.startswith(("-e ", ".", '".', "'."))]
    assert len(ours) >= 4
    for line in README.read_text(encoding="utf-8").splitlines():
        if 'pip install "numerous-tasks' in line:  # the published form, only where marked so
            assert "once numerous-tasks is published on PyPI" in line, line
    for command in ours:
        for named in re.findall(r"\.\[([a-z,]+)\]", command):
            assert set(named.split(",")) <= extras, command
