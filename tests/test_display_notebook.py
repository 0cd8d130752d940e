"""Session(display=True) in a Jupyter notebook, run in a real kernel (nbclient + ipykernel)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Dict, List

import pytest
from display_tasks import FAIL_EVERY

TESTS = Path(__file__).resolve().parent

CELL = f"""\
import sys
sys.path.insert(0, {str(TESTS)!r})
from display_tasks import step
from numerous.tasks import Session

with Session(display=True):
    futures = [step.instance().start(n) for n in (1, 2, {FAIL_EVERY + 7})]
print([f.status for f in futures])
"""


def watching_client(notebook: Any, **options: Any) -> Any:
    """An nbclient NotebookClient that keeps every message the kernel sent about the
    cell's outputs in ``.messages``. Imported here, once JUPYTER_PLATFORM_DIRS is set:
    jupyter_core < 5.8 warns at import without it (and warnings are errors here)."""
    from nbclient import NotebookClient

    class WatchingClient(NotebookClient):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.messages: List[Dict[str, Any]] = []

        def process_message(self, msg: Dict[str, Any], cell: Any, cell_index: int) -> Any:
            if msg["msg_type"] in ("display_data", "update_display_data", "stream"):
                self.messages.append(msg)
            return super().process_message(msg, cell, cell_index)

    return WatchingClient(notebook, **options)


@pytest.mark.timeout(120)
def test_a_session_in_a_notebook_is_one_view_updated_in_place_and_a_clean_final_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")  # jupyter_core warns without it
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    import nbformat

    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(CELL)]
    client = watching_client(
        notebook, timeout=100, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    # In a loop of our own, closed at the end: client.execute() would leave one open.
    asyncio.run(client.async_execute())
    outputs = notebook.cells[0].outputs
    views = [o for o in outputs if o.output_type == "display_data"]
    streams = [o for o in outputs if o.output_type == "stream"]
    assert len(views) == 1, outputs  # one view for the whole session, not one output per event
    assert {o.name for o in streams} <= {"stdout", "stderr"} and len(outputs) <= 3, outputs
    assert streams[-1].text.rstrip().endswith("['completed', 'completed', 'failed']")
    view = views[0]
    assert "text/html" in view.data and "<pre" in view.data["text/html"]
    final = view.data["text/plain"].splitlines()
    assert final[-1].startswith("3 instances: 2 completed, 1 failed · ")
    assert sorted(line.split()[2] for line in final[:-1]) == ["completed", "completed", "failed"]  # in finishing order
    # Updated in place while it ran: the kernel replaced the view, and it showed instances running.
    display_id = view.transient["display_id"] if "transient" in view else None
    updates = [m for m in client.messages if m["msg_type"] == "update_display_data"]
    assert len(updates) >= 2
    assert all(
        m["content"]["transient"]["display_id"] == updates[0]["content"]["transient"]["display_id"] for m in updates
    )
    assert display_id in (None, updates[0]["content"]["transient"]["display_id"])
    assert any(" running " in m["content"]["data"]["text/plain"] for m in updates)
    # The failure's traceback was printed once, below the view, in the cell's stderr.
    stderr = "".join(o.text for o in streams if o.name == "stderr")
    assert stderr.count(f"ValueError: item {FAIL_EVERY + 7} is corrupt") >= 1
