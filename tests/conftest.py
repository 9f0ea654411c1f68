from pathlib import Path

import pytest
import torch

from tests.checkpoint_files import manifest_state, official_layout, serialized, write

# Results are compared in float32 on the CPU; keep the two cores for one test at a time.
torch.set_num_threads(max(1, torch.get_num_threads()))


@pytest.fixture(scope="session")
def ckpt_dir(tmp_path_factory) -> Path:
    """A checkpoint folder holding v00 and vb filled with the reference weights (no download needed)."""
    folder = tmp_path_factory.mktemp("ckpt")
    for name in ("v00", "vb"):
        write(folder / "PerVFI" / f"{name}.pth", serialized(official_layout(name, manifest_state(name))))
    return folder
