"""densecrf, guided and binarize against known geometry and independent numpy/OpenCV references."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

import salplug
from salplug.testing import check_component


def _disc(height: int = 48, width: int = 64, radius: float = 14.0) -> np.ndarray:
    yy, xx = np.mgrid[:height, :width]
    return ((yy - height / 2) ** 2 + (xx - width / 2) ** 2 <= radius**2).astype(np.float32)


def _disc_batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A bright disc on a dark image, a blurred noisy map of it, and the true mask; batch of 2."""
    rng = np.random.default_rng(seed)
    disc = _disc()
    image = np.stack([0.15 + 0.7 * disc] * 3) + rng.normal(0, 0.02, (3, *disc.shape))
    soft = cv2.GaussianBlur(0.2 + 0.6 * disc, (0, 0), 3)
    maps = np.stack([soft + rng.normal(0, 0.1, disc.shape) for _ in range(2)])
    as_tensor = lambda a: torch.from_numpy(np.clip(a, 0, 1).astype(np.float32))  # noqa: E731
    return as_tensor(np.stack([image, image])), as_tensor(maps)[:, None], torch.from_numpy(disc)


def _box_ref(x: np.ndarray, r: int) -> np.ndarray:
    """He et al.'s boxfilter(·)/N: mean over the clipped (2r+1)² window, by loops."""
    h, w = x.shape[-2:]
    out = np.empty_like(x, dtype=np.float64)
    for i in range(h):
        for j in range(w):
            out[..., i, j] = x[..., max(0, i - r) : i + r + 1, max(0, j - r) : j + r + 1].mean(axis=(-2, -1))
    return out


def _guided_ref(guide: np.ndarray, p: np.ndarray, r: int, eps: float) -> np.ndarray:
    """Straight transcription of He et al.'s Algorithm 1 (gray guide) and its colour variant."""
    mean_i, mean_p = _box_ref(guide, r), _box_ref(p, r)
    cov = _box_ref(guide * p, r) - mean_i * mean_p
    if guide.shape[0] == 1:
        a = cov / (_box_ref(guide * guide, r) - mean_i**2 + eps)
    else:
        a = np.empty_like(mean_i)
        for i in range(p.shape[-2]):
            for j in range(p.shape[-1]):
                window = guide[:, max(0, i - r) : i + r + 1, max(0, j - r) : j + r + 1].reshape(3, -1)
                sigma = np.cov(window, bias=True) + eps * np.eye(3)
                a[:, i, j] = np.linalg.solve(sigma, cov[:, i, j])
    b = mean_p - (a * mean_i).sum(0, keepdims=True)
    return np.clip((_box_ref(a, r) * guide).sum(0, keepdims=True) + _box_ref(b, r), 0, 1)


# densecrf


def test_densecrf_pulls_a_noisy_disc_map_towards_the_disc():
    image, maps, disc = _disc_batch()
    out = salplug.build("postprocessor", "densecrf")(image, maps)
    before = (maps[:, 0] - disc).abs().mean(dim=(1, 2))
    after = (out[:, 0] - disc).abs().mean(dim=(1, 2))
    assert out.shape == maps.shape and float(out.min()) >= 0 and float(out.max()) <= 1
    assert torch.all(after < 0.5 * before), (before, after)


@pytest.mark.parametrize("unary", ["map", "labels"])
def test_densecrf_hard_output_is_binary_and_matches_the_disc(unary):
    image, maps, disc = _disc_batch(1)
    out = salplug.build("postprocessor", "densecrf", output="hard", unary=unary)(image, maps)
    assert set(out.unique().tolist()) == {0.0, 1.0}
    assert float((out[:, 0] != disc).float().mean()) < 0.02


def test_densecrf_rejects_mismatched_sizes():
    with pytest.raises(ValueError, match="expected image"):
        salplug.build("postprocessor", "densecrf")(torch.zeros(1, 3, 8, 8), torch.zeros(1, 1, 8, 9))


# guided


def test_guided_with_constant_guide_is_twice_box_filtered():
    p = np.random.default_rng(2).random((2, 1, 15, 19))
    out = salplug.build("postprocessor", "guided", radius=2)(torch.full((2, 3, 15, 19), 0.4), torch.from_numpy(p))
    np.testing.assert_allclose(out.numpy(), _box_ref(_box_ref(p, 2), 2), atol=1e-6)


def test_guided_keeps_a_step_edge_that_box_smoothing_blurs():
    step = np.zeros((32, 32), np.float32)
    step[:, 16:] = 1
    noisy = np.clip(step + np.random.default_rng(3).normal(0, 0.1, step.shape), 0, 1)
    image = torch.from_numpy(np.stack([step] * 3))[None].repeat(2, 1, 1, 1)
    maps = torch.from_numpy(noisy)[None, None].repeat(2, 1, 1, 1)
    out = salplug.build("postprocessor", "guided", radius=4)(image, maps)
    across = out[:, 0, :, 14:18].mean(dim=1)  # columns two either side of the edge
    assert torch.all(across[:, :2] < 0.1) and torch.all(across[:, 2:] > 0.9), across
    assert float(out[:, 0, :, :12].std()) < float(torch.from_numpy(noisy[:, :12]).std()) / 2
    blurred = _box_ref(noisy, 4)[:, 14:18].mean(axis=0)
    assert blurred[1] > 0.3 and blurred[2] < 0.7  # what plain smoothing would have done


@pytest.mark.parametrize("guide", ["gray", "color"])
def test_guided_matches_numpy_reference(guide):
    rng = np.random.default_rng(4)
    image, p = rng.random((2, 3, 13, 17)), rng.random((2, 1, 13, 17))
    out = salplug.build("postprocessor", "guided", radius=3, eps=1e-2, guide=guide)(
        torch.from_numpy(image).float(), torch.from_numpy(p).float()
    )
    luma = (image * np.array([0.299, 0.587, 0.114])[:, None, None]).sum(1, keepdims=True)
    for i in range(2):
        g = image[i] if guide == "color" else luma[i]
        np.testing.assert_allclose(out[i].numpy(), _guided_ref(g, p[i], 3, 1e-2), atol=1e-4)


def test_colour_guided_filter_stays_exact_on_a_flat_photo_patch_with_small_eps():
    """Near-uniform windows make Σ + eps·I nearly singular: the closed-form solve must still agree."""
    from skimage import data

    image = data.coffee()[40:60, 10:34].transpose(2, 0, 1).astype(np.float64) / 255
    p = np.random.default_rng(5).random((1, 20, 24))
    out = salplug.build("postprocessor", "guided", radius=3, eps=1e-5, guide="color")(
        torch.from_numpy(image)[None].float(), torch.from_numpy(p)[None].float()
    )
    np.testing.assert_allclose(out[0].numpy(), _guided_ref(image, p, 3, 1e-5), atol=1e-3)


# binarize


def test_binarize_fixed_and_adaptive_match_numpy():
    maps = np.random.default_rng(5).random((3, 1, 20, 24)).astype(np.float32) ** 3
    image = torch.zeros(3, 3, 20, 24)
    fixed = salplug.build("postprocessor", "binarize", method="fixed", threshold=0.3)(image, torch.from_numpy(maps))
    np.testing.assert_array_equal(fixed.numpy(), (maps >= 0.3).astype(np.float32))
    adaptive = salplug.build("postprocessor", "binarize", method="adaptive")(image, torch.from_numpy(maps))
    thresholds = np.minimum(2 * maps.mean(axis=(1, 2, 3), keepdims=True), 1)
    np.testing.assert_array_equal(adaptive.numpy(), (maps >= thresholds).astype(np.float32))


def test_binarize_otsu_matches_opencv():
    rng = np.random.default_rng(6)
    disc = _disc(30, 40, 9)
    maps = np.stack([np.clip(disc * 0.5 + 0.25 + rng.normal(0, s, disc.shape), 0, 1) for s in (0.05, 0.15, 0.3)])
    levels = (maps * 255).round().astype(np.uint8)
    out = salplug.build("postprocessor", "binarize", method="otsu")(
        torch.zeros(3, 3, 30, 40), torch.from_numpy(levels / 255.0).float()[:, None]
    )
    for i in range(3):
        _, expected = cv2.threshold(levels[i], 0, 1, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
        np.testing.assert_array_equal(out[i, 0].numpy(), expected.astype(np.float32))


# conformance


@pytest.mark.parametrize(
    ("name", "config"),
    [
        ("densecrf", None),
        ("densecrf", {"unary": "labels", "output": "hard", "iterations": 3}),
        ("guided", None),
        ("guided", {"guide": "color", "radius": 3}),
        ("binarize", None),
        ("binarize", {"method": "otsu"}),
        ("binarize", {"method": "fixed", "threshold": 0.2}),
    ],
)
def test_new_postprocessors_conform(name, config):
    check_component(salplug.get_component("postprocessor", name), config=config)
