"""The demo notebook runs top to bottom in a python3 kernel (offline, on the CPU, dis+splat on the
bundled example and a stand-in clip), and shows what it promises."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.media import video_frames
from tests.test_gif import gif_frames

nbclient = pytest.importorskip("nbclient", reason="nbclient is not installed (requirements.txt)")
nbformat = pytest.importorskip("nbformat", reason="nbformat is not installed (requirements.txt)")

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "pervfi_demo.ipynb"


@pytest.mark.slow
def test_the_notebook_runs_top_to_bottom(tmp_path, monkeypatch):
    monkeypatch.setenv("PERVFI_NOTEBOOK_TEST", "1")
    monkeypatch.setenv("PERVFI_NOTEBOOK_OUTPUT", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("PERVFI_NOTEBOOK_CLIP", raising=False)
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code"), \
        "the notebook is committed with outputs; clear them"
    nbclient.NotebookClient(notebook, kernel_name="python3", timeout=600,
                            resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    assert not [output for output in outputs if output.output_type == "error"]
    shown = [output for output in outputs if output.output_type == "display_data"]
    videos = [output for output in shown if "<video" in output.data.get("text/html", "")]
    assert len(videos) == 4 and all("base64" in video.data["text/html"] for video in videos)  # embedded: plays in Colab
    assert any("image/gif" in output.data or "image/png" in output.data for output in shown)
    text = "".join(output.get("text", "") for output in outputs)
    assert "dis+splat needs no weights" in text
    assert len(video_frames(tmp_path / "shapes" / "shapes-dis+splat.mp4")[1]) == 11  # 6 frames ×2
    assert len(video_frames(tmp_path / "clip" / "clip-dis+splat.mp4")[1]) == 9  # the 3-frame clip ×4
    assert len(gif_frames(tmp_path / "clip" / "clip-dis+splat.gif")[0]) == 9
