"""Large frames' full-resolution steps run a band of rows at a time (`pervfi.ops.bands`):
the result must be the whole frame's, whatever the bands."""
import pytest
import torch

from pervfi.models.generators import build_generator
from pervfi.ops import bands
from tests.seeded_weights import seeded

pytestmark = pytest.mark.usefixtures("without_autograd")


def _random(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("halo, exact", [(3, True), (2, False)])
def test_bands_equal_the_whole_frame_when_the_halo_covers_the_reach(halo, exact, monkeypatch):
    convs = torch.nn.Sequential(*[torch.nn.Conv2d(4, 4, 3, padding=1) for _ in range(3)])  # reach 3 rows
    x = _random(1, 4, 40, 24)
    whole = convs(x)
    monkeypatch.setattr(bands, "BAND_BYTES", 1)  # bands of 8 rows
    banded = bands.in_bands(lambda low, high: [convs(x[..., low:high, :])], 40, halo, [1], 1)[0]
    assert torch.allclose(banded, whole, atol=1e-6) == exact


def _generator():
    return seeded(build_generator("vb"))


def test_deformable_alignment_in_bands_equals_the_whole_frame(monkeypatch):
    align = _generator().deformableAlign
    height, width = 64, 48
    features = [(_random(1, c, height >> i, width >> i, seed=2 * i), _random(1, c, height >> i, width >> i, seed=2 * i + 1))
                for i, c in enumerate((35, 64, 96))]
    holes = [(_random(1, 1, height >> i, width >> i, seed=10 + i) > 0.8).float() for i in range(3)]
    flow = 3 * _random(1, 2, height, width, seed=20)
    whole = align(features, holes, flow)
    monkeypatch.setattr(bands, "BAND_BYTES", 1)
    for level, (banded, expected) in enumerate(zip(align(features, holes, flow), whole)):
        # Measured: 2e-6 with the reach right, 5e-3 with a reach of 3 rows.
        assert (banded - expected).abs().max() < 1e-4, f"level {level}"


def test_fusion_head_in_bands_equals_the_whole_frame(monkeypatch):
    fuse = _generator().multiscaleFuse
    levels = [_random(1, 35, 88, 40, seed=1), _random(1, 64, 44, 20, seed=2), _random(1, 96, 22, 10, seed=3)]
    whole = fuse(levels)
    monkeypatch.setattr(bands, "BAND_BYTES", 1)
    for banded, expected in zip(fuse(levels), whole):  # outputs up to about 17
        # Measured: 2e-5 with the reach right, 3e-2 with a reach of 4 rows.
        assert (banded - expected).abs().max() < 1e-3
