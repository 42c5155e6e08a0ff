"""Steps 3-5 on a synthetic image whose object is known: a red disc on a green-grey texture."""

import numpy as np
import pytest

from salplug.ops import superpixels
from salplug_gdsal.superpixels import colour_contrast, prune, refine, segment_means, smooth


@pytest.fixture(scope="module")
def scene():
    rng = np.random.default_rng(0)
    height, width = 96, 128
    ys, xs = np.mgrid[:height, :width]
    disc = (ys - 48) ** 2 + (xs - 60) ** 2 < 22**2
    image = np.empty((height, width, 3))
    image[...] = (0.35, 0.45, 0.35)
    image += 0.08 * rng.standard_normal((height, width, 1)) + 0.05 * np.sin(xs / 3.0)[..., None]
    image[disc] = (0.85, 0.15, 0.1)
    return image.clip(0, 1), disc, rng


def test_gdsal_prune_soft_threshold_and_blank():
    values = np.array([0.0, 0.05, 0.5, 1.0])
    assert np.allclose(prune(values, 0.1), [0.0, 0.0, 0.4 / 0.9, 1.0])
    assert not prune(np.zeros((4, 4)), 0.2).any()
    assert np.isfinite(prune(np.full((3, 3), np.nan), 0.2)).all()


def test_gdsal_segment_means_match_a_loop(scene):
    image, _, _ = scene
    labels = superpixels(image, 100, 10)
    means = segment_means(image, labels)
    for label in (0, labels.max()):
        assert np.allclose(means[label], image[labels == label].mean(axis=0))


def test_gdsal_superpixel_smoothing_scores_disc_above_background(scene):
    image, disc, rng = scene
    # Gradient-like raw map: sparse speckle, denser on the object, plus background noise.
    raw = (rng.random(disc.shape) < np.where(disc, 0.3, 0.05)) * rng.random(disc.shape)
    smoothed = smooth(raw, superpixels(image, 100, 10))
    assert smoothed[disc].mean() > 2 * smoothed[~disc].mean()
    assert smoothed[disc].std() < raw[disc].std()


def test_gdsal_colour_contrast_scores_disc_above_background(scene):
    image, disc, _ = scene
    contrast = colour_contrast(image, superpixels(image, 100, 10))
    assert contrast.min() >= 0 and contrast.max() <= 1
    assert contrast[disc].mean() > contrast[~disc].mean() + 0.3


def test_gdsal_refine_keeps_the_disc_and_stays_in_range(scene):
    image, disc, rng = scene
    raw = (rng.random(disc.shape) < np.where(disc, 0.3, 0.1)) * rng.random(disc.shape)
    out = refine(image, raw, n_segments=100, compactness=10, alpha=0.5, raw_threshold=0.1, final_threshold=0.1)
    assert out.dtype == np.float32 and out.min() >= 0 and out.max() == pytest.approx(1.0)
    assert out[disc].mean() > 3 * out[~disc].mean()
    blank = refine(np.zeros_like(image), np.zeros(disc.shape), n_segments=100, compactness=10, alpha=0.5,
                   raw_threshold=0.1, final_threshold=0.1)
    assert np.isfinite(blank).all() and not blank.any()


def test_gdsal_refine_multiscale_averages_scales(scene):
    image, disc, rng = scene
    raw = (rng.random(disc.shape) < np.where(disc, 0.3, 0.1)) * rng.random(disc.shape)
    options = dict(compactness=10, alpha=0.5, raw_threshold=0.1, final_threshold=0.2)
    one_scale = refine(image, raw, n_segments=100, **options)
    assert np.array_equal(refine(image, raw, n_segments=(100,), **options), one_scale)
    out = refine(image, raw, n_segments=(50, 100, 200), **options)
    assert out.dtype == np.float32 and out.min() >= 0 and out.max() == pytest.approx(1.0)
    assert out[disc].mean() > 3 * out[~disc].mean()
    # The average of the smoothed maps at each scale, weighted by the averaged contrast.
    pruned = prune(raw, 0.1)
    labelings = [superpixels(image, n, 10) for n in (50, 100, 200)]
    smoothed = sum(prune(smooth(pruned, labels), 0.0).astype(np.float64) for labels in labelings) / 3
    contrast = sum(colour_contrast(image, labels) for labels in labelings) / 3
    assert np.allclose(out, prune(smoothed * (0.5 + contrast), 0.2), atol=1e-6)
