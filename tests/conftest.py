import logging
import os
from pathlib import Path

import pytest
import torch

from tests.checkpoint_files import model_state, official_layout, serialized, write

# Results are compared in float32 on the CPU; keep the two cores for one test at a time.
torch.set_num_threads(max(1, torch.get_num_threads()))
# The tools' default threads follow the cores free at their start (pervfi.core.cpu_threads), and
# the thread count can change a pixel by one grey level: tests that run a tool, in this process
# or in a child, get this fixed figure instead, so runs compared with each other match.
os.environ.setdefault("OMP_NUM_THREADS", str(torch.get_num_threads()))


@pytest.fixture(scope="session")
def ckpt_dir(tmp_path_factory) -> Path:
    """A checkpoint folder holding v00.pth and vb.pth in the official layout, filled with the tests' seeded
    weights (tests/seeded_weights.py, not the conformance fill: no ../shared and no download needed)."""
    folder = tmp_path_factory.mktemp("ckpt")
    for name in ("v00", "vb"):
        write(folder / "PerVFI" / f"{name}.pth", serialized(official_layout(name, model_state(name))))
    return folder


@pytest.fixture(autouse=True)
def _autograd_on_between_tests():
    """A module that switches autograd off at import silently breaks every training test run
    after it: fail at once instead, naming the way out."""
    assert torch.is_grad_enabled(), ("autograd is off before this test: a test module called "
                                     "torch.set_grad_enabled(False); use the without_autograd fixture")
    yield


@pytest.fixture
def without_autograd():
    """Inference tests run without building autograd graphs; scoped to each test so that the
    training tests, whatever runs before them, keep torch's default (gradients on)."""
    with torch.no_grad():
        yield


@pytest.fixture(autouse=True)
def _restore_package_logger():
    """The command-line tools configure the "pervfi" logger when run in-process; put it back
    after each test so later tests' log capture sees the records again."""
    log = logging.getLogger("pervfi")
    saved = (list(log.handlers), log.propagate, log.level)
    yield
    log.handlers[:], log.propagate, log.level = saved


@pytest.fixture(autouse=True)
def _whole_frames_whatever_is_free(monkeypatch):
    """Without a budget the interpolator tiles when the device's free memory is short; on a
    shared machine that would change results from run to run. Tests see no limit unless they
    set a budget (tests/test_memory_budget.py)."""
    from pervfi.runtime import memory

    in_use_and_free = memory.in_use_and_free
    monkeypatch.setattr(memory, "in_use_and_free", lambda device: (in_use_and_free(device)[0], None))
