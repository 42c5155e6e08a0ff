"""The core's own components against independent references (OpenCV, numpy)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

import salplug
from salplug import ConfigError, ContractError, ImageReadError


@pytest.mark.parametrize("size", [3, 5])
def test_median_matches_opencv(size):
    rng = np.random.default_rng(1)
    maps = rng.random((3, 41, 29), dtype=np.float32)
    median = salplug.build("postprocessor", "median", size=size, max_elements=size * size * 41 * 29)
    out = median(torch.zeros(3, 3, 41, 29), torch.from_numpy(maps)[:, None])
    for i in range(3):
        expected = cv2.medianBlur(maps[i], size)
        np.testing.assert_allclose(out[i, 0].numpy(), expected, atol=1e-7)


def test_median_rejects_even_window():
    with pytest.raises(ConfigError, match="odd window size"):
        salplug.build("postprocessor", "median", size=6)


def test_normalize_stretches_each_map_and_keeps_constant_ones():
    maps = torch.stack([torch.linspace(0.2, 0.6, 12).view(1, 3, 4), torch.full((1, 3, 4), 0.3)])
    out = salplug.build("postprocessor", "normalize")(torch.zeros(2, 3, 3, 4), maps)
    assert out[0].min().item() == pytest.approx(0.0) and out[0].max().item() == pytest.approx(1.0)
    assert torch.allclose(out[0], (maps[0] - 0.2) / 0.4, atol=1e-6)
    assert torch.equal(out[1], maps[1])


def test_center_prior_peaks_in_the_middle():
    out = salplug.build("prior", "center", sigma=0.2)(torch.zeros(2, 3, 31, 41))
    assert out.shape == (2, 1, 31, 41)
    assert out[0, 0, 15, 20].item() == pytest.approx(1.0)
    assert out[0, 0, 0, 0] < 0.05
    assert torch.equal(out[0], out[1])


def test_given_prior_reads_resizes_and_reports(tmp_path):
    cv2.imwrite(str(tmp_path / "a.png"), np.full((10, 20), 255, np.uint8))
    cv2.imwrite(str(tmp_path / "b.jpg"), np.zeros((5, 10), np.uint8))
    image = torch.zeros(2, 3, 10, 20)
    given = salplug.build("prior", "given", root=tmp_path)
    with pytest.raises(ImageReadError, match=r"b\.jpg.*map is 10×5 but its image is 20×10"):
        given(image, keys=["a", "b"])
    with pytest.raises(ImageReadError, match="no map for image 'c'"):
        given(image, keys=["a", "c"])
    with pytest.raises(ContractError, match="keys="):
        given(image)
    out = salplug.build("prior", "given", root=tmp_path, resize=True)(image, keys=["a", "b"])
    assert out.shape == (2, 1, 10, 20)
    assert torch.all(out[0] == 1.0) and torch.all(out[1] == 0.0)


def test_mae_matches_numpy_and_accumulates():
    rng = np.random.default_rng(2)
    maps = rng.random((4, 1, 8, 9), dtype=np.float32)
    masks = rng.random((4, 1, 8, 9)) > 0.5
    mae = salplug.build("metric", "mae")
    first = mae.update(torch.from_numpy(maps[:3]), torch.from_numpy(masks[:3]))["mae"]
    mae.update(torch.from_numpy(maps[3:]), torch.from_numpy(masks[3:]))
    per_image = np.abs(maps - masks).reshape(4, -1).mean(axis=1)
    np.testing.assert_allclose(first.numpy(), per_image[:3], rtol=1e-6)
    assert mae.compute()["mae"] == pytest.approx(per_image.mean(), rel=1e-6)
    mae.reset()
    assert np.isnan(mae.compute()["mae"])
    with pytest.raises(ContractError, match="mask: expected a bool"):
        mae.update(torch.from_numpy(maps), torch.from_numpy(masks.astype(np.float32)))
