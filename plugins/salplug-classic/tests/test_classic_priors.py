"""The classic priors find a known object and keep the prior data contract."""

import pytest
import torch

from salplug_classic import FrequencyTuned, MinimumBarrier, MinimumBarrierPlus, SpectralResidual

PRIORS = [SpectralResidual, MinimumBarrier, MinimumBarrierPlus, FrequencyTuned]


def disc_scene(seed: int, height: int = 96, width: int = 128) -> tuple[torch.Tensor, torch.Tensor]:
    """A saturated red disc off-centre on a grey-green noisy, textured background; returns image and disc mask."""
    generator = torch.Generator().manual_seed(seed)
    ys, xs = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    texture = 0.05 * torch.sin(xs / 3.0) * torch.cos(ys / 4.0)
    noise = 0.04 * torch.randn((3, height, width), generator=generator)
    background = torch.tensor([0.45, 0.5, 0.4])[:, None, None] + texture + noise
    mask = (ys - 0.45 * height) ** 2 + (xs - 0.55 * width) ** 2 < (0.2 * height) ** 2
    disc = torch.tensor([0.9, 0.1, 0.1])[:, None, None] + 0.03 * torch.randn((3, height, width), generator=generator)
    image = torch.where(mask, disc, background).clamp(0, 1)
    return image[None].float(), mask


@pytest.fixture(scope="module")
def scenes():
    (first, mask), (second, _) = disc_scene(1), disc_scene(2)
    return torch.cat([first, second]), mask


@pytest.mark.parametrize("cls", PRIORS, ids=lambda c: c.name)
def test_classic_prior_finds_the_disc(cls, scenes):
    images, mask = scenes
    out = cls()(images)
    assert out.shape == (2, 1, *images.shape[-2:]) and out.dtype == torch.float32
    assert out.device == images.device
    assert torch.isfinite(out).all() and out.min() >= 0 and out.max() <= 1
    for saliency in out[:, 0]:
        assert saliency.min() == 0 and saliency.max() == 1
        inside, outside = saliency[mask].mean(), saliency[~mask].mean()
        assert inside > outside + 0.3, f"{cls.name}: inside {inside:.3f} vs outside {outside:.3f}"


@pytest.mark.parametrize("cls", PRIORS, ids=lambda c: c.name)
def test_classic_prior_batch_matches_single_images(cls, scenes):
    images, _ = scenes
    prior = cls()
    together = prior(images)
    for i in range(len(images)):
        torch.testing.assert_close(prior(images[i : i + 1]), together[i : i + 1], rtol=0, atol=1e-6)


@pytest.mark.parametrize("cls", PRIORS, ids=lambda c: c.name)
def test_classic_prior_constant_image(cls):
    image = torch.full((1, 3, 40, 30), 0.6)
    out = cls()(image)
    assert out.shape == (1, 1, 40, 30)
    assert torch.isfinite(out).all() and out.min() >= 0 and out.max() <= 1


@pytest.mark.parametrize("cls", [MinimumBarrier, MinimumBarrierPlus], ids=lambda c: c.name)
def test_classic_mbd_options(cls, scenes):
    images, mask = scenes
    out = cls(color_space="rgb", passes=2, median_radius=0, max_side=64)(images[:1])[0, 0]
    assert out[mask].mean() > out[~mask].mean() + 0.2


def test_classic_mbd_matches_sequential_raster_scan():
    """The diagonal-wavefront scans give exactly the pixel-by-pixel FastMBD raster order."""
    from salplug_classic.mbd import fast_mbd

    generator = torch.Generator().manual_seed(0)
    feature = torch.randint(0, 256, (9, 11), generator=generator).float().numpy()
    height, width = feature.shape
    dist = torch.full((height, width), float("inf"))
    dist[0], dist[-1], dist[:, 0], dist[:, -1] = 0, 0, 0, 0
    dist, low, high = dist.numpy(), feature.copy(), feature.copy()
    for k in range(3):
        step = 1 if k % 2 == 0 else -1
        rows = range(1, height - 1) if step == 1 else range(height - 2, 0, -1)
        cols = range(1, width - 1) if step == 1 else range(width - 2, 0, -1)
        for r in rows:
            for c in cols:
                for nr, nc in ((r, c - step), (r - step, c)):
                    lo, hi = min(low[nr, nc], feature[r, c]), max(high[nr, nc], feature[r, c])
                    if hi - lo < dist[r, c]:
                        dist[r, c], low[r, c], high[r, c] = hi - lo, lo, hi
    assert (fast_mbd(feature[None], 3)[0] == dist).all()
