"""The authors' from-scratch start: default initialisation, then the feature pyramid from
softmax splatting's pretrained "lf" model (Niklaus & Liu, CVPR 2020).

The reference's `FeaturePyramid.__init__` (``src/train/generators/PFlowVFI_V0.py:63``,
``PFlowVFI_Vb.py:62``) reads ``checkpoints/network-lf.pytorch``, keeps every key containing
``moduleSynthesis``, renames ``moduleSynthesis.`` → ```` and then ``module`` → ``net``, and
loads the result into the pyramid with ``strict=False``: keys the pyramid lacks are ignored,
and the rest of the generator keeps PyTorch's default initialisation.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from torch import Tensor, nn

from pervfi.core.errors import CheckpointError
from pervfi.models.checkpoints import read_state_dict
from pervfi.models.generators import build_generator

NETWORK_LF = "network-lf"  # the registered weight file (models.yaml `files:`)
SOURCE_PREFIX = "moduleSynthesis"  # softmax splatting's synthesis network holds the pyramid
PYRAMID = "featurePyramid"  # the generators' attribute for it


def pyramid_state(network_lf: Mapping[str, Tensor], pyramid: nn.Module) -> dict[str, Tensor]:
    """The entries of `network_lf` (softmax splatting's state dict) that the reference loads into
    `pyramid`, under the pyramid's key names."""
    renamed = {key.replace(f"{SOURCE_PREFIX}.", "").replace("module", "net"): value
               for key, value in network_lf.items() if SOURCE_PREFIX in key}
    own = pyramid.state_dict()
    return {key: value for key, value in renamed.items() if key in own}


def scratch_generator(name: str, network_lf: str | Path) -> nn.Module:
    """Generator `name` ("v00" | "vb") as the authors start training it: PyTorch's default
    initialisation (seed the global generator first for a reproducible start), then the pyramid
    from the softmax-splatting checkpoint file `network_lf`, in train mode."""
    generator = build_generator(name)
    pyramid = getattr(generator, PYRAMID)
    state = pyramid_state(read_state_dict(network_lf), pyramid)
    misshaped = [key for key, value in state.items() if value.shape != pyramid.state_dict()[key].shape]
    if not state or misshaped:
        problem = f"wrongly shaped {misshaped[0]}" if misshaped else f"no {SOURCE_PREFIX}.* key fits the pyramid"
        raise CheckpointError(f"{network_lf} is not softmax splatting's network-lf.pytorch: {problem}")
    pyramid.load_state_dict(state, strict=False)
    return generator.train()
