"""`salplug eval --engine ray` under faults: a map that cannot be written costs no score and no double count."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

import salplug
from salplug.data import SODDataset
from salplug.metrics._evaluation import score_chain

ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'salplug[ray]' to run these tests)")
pytest.importorskip("ray.data", reason="Ray Data is not installed (pip install 'salplug[ray]')")

from salplug.distributed._ray_eval import score_chain_ray  # noqa: E402

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def local_cluster():
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


def six_images(root):
    """Six images whose masks differ, so counting one twice moves the mean."""
    rng = np.random.default_rng(1)
    for i in range(6):
        mask = np.zeros((12, 16), np.uint8)
        mask[i % 3 : 8 + i % 3, 2 + i : 10 + i] = 255
        prior = np.clip(cv2.GaussianBlur(mask, (5, 5), 0) * 0.8 + rng.integers(0, 50, mask.shape), 0, 255)
        for sub, array in (("images", np.full((12, 16, 3), 40 * i, np.uint8)), ("masks", mask), ("priors/p", prior)):
            (root / sub).mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(root / sub / f"k{i}.png"), array.astype(np.uint8))
    return SODDataset(root)


def test_a_map_that_cannot_be_written_is_scored_once_on_ray(local_cluster, tmp_path):
    data = six_images(tmp_path / "set")
    chain = salplug.Chain([salplug.build("prior", "center"), salplug.build("postprocessor", "median", size=3)])
    expected = score_chain(data, chain, "smooth", priors=["p"], score_input=True, batch_size=4)
    saved = tmp_path / "saved"
    (saved / "p" / "k3.png").mkdir(parents=True)
    got = score_chain_ray(data, chain, "smooth", priors=["p"], score_input=True, batch_size=4, save_maps=saved,
                          workers=2)
    for result, reference in zip(got, expected, strict=True):
        assert (result.name, result.count, result.failed) == (reference.name, 6, {})
        assert result.scores == pytest.approx(reference.scores, abs=1e-9, rel=0)
        assert result.per_image.keys() == reference.per_image.keys()
        assert result.per_image["mae"] == pytest.approx(reference.per_image["mae"], abs=1e-12, rel=0)
    assert list(got[1].unsaved) == [str((saved / "p" / "k3.png").resolve())]
    assert sorted(p.name for p in (saved / "p").glob("*.png") if p.is_file()) == [f"k{i}.png" for i in (0, 1, 2, 4, 5)]
