"""Reading and loading checkpoints: strict, safe, and clear about what is wrong (no network)."""
import os

import pytest
import torch

from pervfi.core.errors import CheckpointError
from pervfi.models import registry
from pervfi.models.checkpoints import checkpoint_names, load_model, read_state_dict
from pervfi.runtime.interpolator import Interpolator
from tests.checkpoint_files import layout, model_state, official_layout, serialized, with_module_prefix, write

pytestmark = pytest.mark.usefixtures("without_autograd")


def _path(folder, name):
    return folder / registry.get_entry(name).checkpoint.path


def _assert_one_line(err: pytest.ExceptionInfo, *fragments: str) -> str:
    message = str(err.value)
    assert "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in: {message}"
    return message


@pytest.mark.parametrize("name", checkpoint_names())
def test_official_layout_loads_strictly(tmp_path, name):
    state = model_state(name)
    write(_path(tmp_path, name), serialized(official_layout(name, state)))
    kind = registry.get_entry(name).kind

    model = load_model(name, kind, tmp_path, download=False)

    assert not model.training
    loaded = model.state_dict()
    assert loaded.keys() == state.keys()
    for key, tensor in state.items():
        assert torch.equal(loaded[key], tensor), key


def test_module_prefix_and_legacy_format_load(tmp_path):
    state = model_state("vb")
    write(_path(tmp_path, "vb"), serialized(with_module_prefix(state), legacy=True))
    loaded = load_model("vb", "generator", tmp_path, download=False).state_dict()
    assert all(torch.equal(loaded[key], tensor) for key, tensor in state.items())


def test_state_key_unwraps_gmflow_wrapper(tmp_path):
    state = {"encoder.weight": torch.arange(6.0).view(2, 3), "encoder.bias": torch.ones(2)}
    path = write(tmp_path / "g.pth", serialized({"model": with_module_prefix(state), "step": 7, "epoch": 1}))
    read = read_state_dict(path, state_key="model")
    assert read.keys() == state.keys()
    assert all(torch.equal(read[key], tensor) for key, tensor in state.items())
    # Without the key, the wrapper is not a state dict, and the error says which entry is not a tensor.
    with pytest.raises(CheckpointError) as err:
        read_state_dict(path)
    _assert_one_line(err, str(path), "'model' is a dict", "not a state dict")


def test_another_models_file_names_file_model_and_keys(tmp_path):
    path = write(_path(tmp_path, "v00"), serialized(model_state("vb")))  # vb.pth where v00.pth belongs
    with pytest.raises(CheckpointError) as err:
        load_model("v00", "generator", tmp_path, download=False)
    first_missing = next(key for key in layout("v00") if key not in layout("vb"))
    first_unexpected = next(key for key in layout("vb") if key not in layout("v00"))
    _assert_one_line(err, str(path), "'v00'", "missing keys", first_missing, "unexpected keys", first_unexpected)


def test_wrongly_shaped_tensor_is_named_with_both_shapes(tmp_path):
    state = model_state("vb")
    key = next(k for k, t in state.items() if t.dim() == 4)
    expected_shape = "x".join(map(str, state[key].shape))
    state[key] = torch.zeros(3, 3, 1, 1)
    path = write(_path(tmp_path, "vb"), serialized(state))
    with pytest.raises(CheckpointError) as err:
        load_model("vb", "generator", tmp_path, download=False)
    message = _assert_one_line(err, str(path), "'vb'", "1 wrongly shaped keys", key, "3x3x1x1", expected_shape)
    assert "missing" not in message and "unexpected" not in message


def test_truncated_file_is_reported_and_left_for_the_user(tmp_path):
    data = serialized(model_state("vb"))
    path = write(_path(tmp_path, "vb"), data[: len(data) // 2])
    with pytest.raises(CheckpointError) as err:
        load_model("vb", "generator", tmp_path, download=False)
    _assert_one_line(err, str(path), "truncated or corrupt", "python -m pervfi.download --ckpt-dir")
    assert path.exists()  # a user's file is never deleted behind their back


class _Trap:
    """Unpickling this would create a folder: proof that arbitrary objects are never unpickled."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.mkdir, (self.marker,)


@pytest.mark.parametrize("content, reason", [
    (lambda tmp: [torch.ones(2)], "holds a list"),
    (lambda tmp: {"weight": torch.ones(2), "epoch": 3}, "'epoch' is a int"),
    (lambda tmp: {}, "empty dict"),
    (lambda tmp: torch.nn.Linear(2, 2), "pickled Python objects"),
    (lambda tmp: {"weight": _Trap(tmp / "trap-fired")}, "pickled Python objects"),
], ids=["list", "dict-with-int", "empty", "pickled-module", "pickled-callable"])
def test_pickle_that_is_not_a_state_dict(tmp_path, content, reason):
    path = write(_path(tmp_path, "vb"), serialized(content(tmp_path)))
    with pytest.raises(CheckpointError) as err:
        load_model("vb", "generator", tmp_path, download=False)
    _assert_one_line(err, str(path), "not a usable checkpoint", reason)
    assert not (tmp_path / "trap-fired").exists()


def test_missing_files_without_download_list_each_file_and_what_to_do(tmp_path):
    with pytest.raises(CheckpointError) as err:
        Interpolator.from_method("raft+pervfi", checkpoint_dir=str(tmp_path), download=False)
    first, *details = str(err.value).splitlines()
    raft, v00 = _path(tmp_path, "raft"), _path(tmp_path, "v00")
    assert first.startswith("missing checkpoints") and str(raft) in first and str(v00) in first
    assert "downloading is turned off" in first
    assert len(details) == 3
    for line, name, path in zip(details, ("raft", "v00"), (raft, v00)):
        spec = registry.get_entry(name).checkpoint
        assert f"python -m pervfi.download --ckpt-dir {tmp_path} {name}" in line
        assert f"/{spec.repo_id}/resolve/main/{spec.filename}" in line and str(path) in line
    assert "-m dis+splat" in details[-1] and "no weights" in details[-1]
    assert not any(tmp_path.iterdir())  # nothing was written
