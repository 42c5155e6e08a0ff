"""The SOD metrics against PySODMetrics 1.6.2: every score and curve, per image and over a
dataset, within 1e-6, on edge cases, random cases, the four photos of tests/data (every
clone) and the real sod-dev set (``data``)."""

from __future__ import annotations

import json
import math
from collections import defaultdict

import cv2
import numpy as np
import py_sod_metrics as pysod
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.ndimage import distance_transform_edt

import salplug
from salplug import ConfigError, ContractError
from salplug.metrics import _sodmetrics as sodmetrics
from salplug.builtins.metrics import METRICS, standard_metrics
from salplug.testing import check_component
from tests.pysod_reference import reference
from salplug.cli import main
from tests.shared_data import TESTS_DATA, TESTS_DATA_PRIORS, dataset_pairs, sod_dev_pairs

TOL = 1e-6
README = {  # sod-dev table in ../shared/data/README.md: MAE, adaptive F
    "amulet": (0.1366, 0.7770),
    "dss": (0.1236, 0.8037),
    "picanet": (0.1001, 0.8073),
}


def ours_per_image(pred: torch.Tensor, gt: torch.Tensor) -> dict[str, torch.Tensor]:
    """Our per-image scores and curves of one prepared batch."""
    adp_f, precision, recall, f = sodmetrics.fmeasure(pred, gt)
    adp_e, e = sodmetrics.emeasure(pred, gt)
    iou, dice = sodmetrics.overlap_adaptive(pred, gt)
    iou_curve, dice_curve = sodmetrics.overlap_curves(pred, gt)
    return {
        "mae": sodmetrics.mae(pred, gt),
        "adp_f": adp_f,
        "precision": precision,
        "recall": recall,
        "fmeasure": f,
        "sm": sodmetrics.smeasure(pred, gt),
        "adp_e": adp_e,
        "emeasure": e,
        "wfm": sodmetrics.weighted_fmeasure(pred, gt),
        "adp_iou": iou,
        "adp_dice": dice,
        "iou": iou_curve,
        "dice": dice_curve,
    }


def stack(arrays: list[np.ndarray]) -> torch.Tensor:
    """``H×W`` uint8 arrays as a ``B×1×H×W`` tensor."""
    return torch.from_numpy(np.stack(arrays))[:, None]


def ours(maps: list[np.ndarray], masks: list[np.ndarray], batch_size: int = 16) -> tuple[dict, dict, dict]:
    """Our per-image values (functions, batched by size), the same from the maps' pixels
    instead of their 8-bit levels, and dataset results (components)."""
    by_shape = defaultdict(list)
    for i, gt in enumerate(masks):
        by_shape[gt.shape].append(i)
    per_image: dict[str, list] = defaultdict(lambda: [None] * len(maps))
    from_pixels: dict[str, list] = defaultdict(lambda: [None] * len(maps))
    metrics = standard_metrics()
    for rows in by_shape.values():
        for start in range(0, len(rows), batch_size):
            chunk = rows[start : start + batch_size]
            pred, gt = sodmetrics.prepare_uint8(stack([maps[i] for i in chunk]), stack([masks[i] for i in chunk]))
            # a copy of pred does not know its levels: the path of maps that were never 8-bit
            for scores, batch in ((per_image, pred), (from_pixels, pred.clone())):
                for key, values in ours_per_image(batch, gt).items():
                    for i, value in zip(chunk, values):
                        scores[key][i] = value.numpy()
            for metric in metrics:
                metric.update(pred, gt)
    dataset: dict = {}
    for metric in metrics:
        dataset.update(metric.compute())
        if hasattr(metric, "curves"):
            dataset.update({k: v.numpy() for k, v in metric.curves().items()})
    return {k: np.stack(v) for k, v in per_image.items()}, {k: np.stack(v) for k, v in from_pixels.items()}, dataset


def assert_matches(got: dict, expected: dict, where: str) -> None:
    """Every key within TOL (relative beyond 1: a one-pixel image's E-measure divides by
    eps, ~1e15); NaN only where the reference is NaN too."""
    assert got.keys() >= expected.keys(), f"{where}: missing {sorted(expected.keys() - got.keys())}"
    for key, want in expected.items():
        have, want = np.asarray(got[key], np.float64), np.asarray(want, np.float64)
        assert have.shape == want.shape, f"{where} {key}: expected shape {want.shape}, got {have.shape}"
        nan = np.isnan(want)
        assert np.array_equal(np.isnan(have), nan), f"{where} {key}: NaN at {np.argwhere(np.isnan(have) != nan)[:5]}"
        diff = np.abs(np.where(nan, 0.0, have - want)) / np.maximum(1.0, np.abs(np.where(nan, 0.0, want)))
        worst = np.unravel_index(diff.argmax(), diff.shape) if diff.size else ()
        assert diff.max(initial=0.0) <= TOL, (
            f"{where} {key}: expected within {TOL:g} of PySODMetrics, got {diff.max():.3g} at {worst}"
            f" ({have[worst]!r} vs {want[worst]!r})"
        )


def check_against_reference(maps: list[np.ndarray], masks: list[np.ndarray], where: str) -> dict:
    (mine, from_pixels, dataset), (theirs, expected) = ours(maps, masks), reference(maps, masks)
    assert_matches(mine, theirs, f"{where}, per image")
    assert_matches(from_pixels, theirs, f"{where}, per image from the pixels")
    assert_matches(dataset, expected, f"{where}, dataset")
    return dataset


RNG = np.random.default_rng(20240611)
H, W = 37, 53


def blob(h: int = H, w: int = W, *, rng: np.random.Generator = RNG) -> np.ndarray:
    """A random filled ellipse, 255 inside."""
    yy, xx = np.ogrid[:h, :w]
    cy, cx = rng.uniform(0, h), rng.uniform(0, w)
    ry, rx = rng.uniform(1, max(h / 2, 1.5)), rng.uniform(1, max(w / 2, 1.5))
    return np.where(((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1, 255, 0).astype(np.uint8)


def noise(h: int = H, w: int = W) -> np.ndarray:
    return RNG.integers(0, 256, (h, w), dtype=np.uint8)


def pixel(y: int, x: int, h: int = H, w: int = W) -> np.ndarray:
    mask = np.zeros((h, w), np.uint8)
    mask[y, x] = 255
    return mask


EMPTY, FULL = np.zeros((H, W), np.uint8), np.full((H, W), 255, np.uint8)
MASKS = [EMPTY, FULL, blob(), blob(), pixel(18, 26), pixel(0, 0), pixel(H - 1, W - 1), pixel(H - 2, 1)]


@pytest.mark.parametrize("level", [0, 128, 255])
def test_constant_maps(level):
    check_against_reference([np.full((H, W), level, np.uint8)] * len(MASKS), MASKS, f"constant map {level}")


def test_empty_full_and_one_pixel_masks_with_random_maps():
    check_against_reference([noise() for _ in MASKS], MASKS, "random maps")


def test_random_maps_with_random_blobs():
    masks = [blob() for _ in range(12)]
    maps = [np.clip(m * RNG.uniform(0.3, 1) + RNG.integers(0, 90, m.shape), 0, 255).astype(np.uint8) for m in masks]
    check_against_reference(maps, masks, "random blobs")


def test_mean_iou_and_dice_curves_are_pysodmetrics_dynamic_ones():
    """The overlap component's dataset curves against FmeasureV2's dynamic IoU and Dice, threshold by threshold."""
    masks = MASKS + [blob() for _ in range(8)]
    maps = [np.clip(m * RNG.uniform(0.2, 1) + RNG.integers(0, 120, m.shape), 0, 255).astype(np.uint8) for m in masks]
    handlers = {"iou": pysod.IOUHandler(with_dynamic=True, with_adaptive=False),
                "dice": pysod.DICEHandler(with_dynamic=True, with_adaptive=False)}
    overlap = pysod.FmeasureV2(metric_handlers=handlers)
    for pred, gt in zip(maps, masks):
        overlap.step(pred, gt, normalize=True)
    expected = overlap.get_results()
    metric = salplug.build("metric", "overlap")
    for start in range(0, len(maps), 5):
        metric.update(*sodmetrics.prepare_uint8(stack(maps[start : start + 5]), stack(masks[start : start + 5])))
    curves = metric.curves()
    for key in ("iou", "dice"):
        want = expected[key]["dynamic"]
        assert want.shape == (256,) and np.ptp(want) > 0.1, f"{key}: a curve that varies with the threshold"
        np.testing.assert_allclose(curves[key].numpy(), want, rtol=0, atol=TOL, err_msg=key)


@pytest.mark.parametrize("shape", [(1, 40), (40, 1), (1, 1), (2, 2)])
def test_thin_images(shape):
    h, w = shape
    masks = [blob(h, w), np.zeros(shape, np.uint8), np.full(shape, 255, np.uint8), blob(h, w)]
    check_against_reference([noise(h, w) for _ in masks], masks, f"{h}×{w} images")


def test_ties_at_the_adaptive_threshold():
    # 100 pixels at 255, 500 at 51 (0.2 after scaling), 1400 at 0: 2 × mean is 0.2, so the 51s
    # tie with the threshold, and whether they count depends on how the mean was summed
    values = np.repeat(np.array([255, 51, 0], np.uint8), [100, 500, 1400])
    maps = [RNG.permutation(values).reshape(40, 50) for _ in range(8)]
    half = np.zeros((40, 50), np.uint8)
    half[:, :25] = 255  # a map of half 0, half 255: 2 × mean is 1, the clip, and the 255s tie
    masks = [blob(40, 50) for _ in range(9)]
    check_against_reference(maps + [half], masks, "ties")


@settings(max_examples=40, deadline=None)
@given(
    h=st.integers(1, 24),
    w=st.integers(1, 24),
    levels=st.lists(st.sampled_from([0, 1, 51, 127, 128, 200, 254, 255]), min_size=1, max_size=3),
    seed=st.integers(0, 2**32 - 1),
    coverage=st.floats(0, 1),
)
def test_random_small_cases(h, w, levels, seed, coverage):
    rng = np.random.default_rng(seed)
    maps = [rng.choice(np.array(levels, np.uint8), (h, w)) for _ in range(3)]
    masks = [np.where(rng.random((h, w)) < coverage, 255, 0).astype(np.uint8), blob(h, w, rng=rng), pixel(0, 0, h, w)]
    check_against_reference(maps, masks, f"{h}×{w}, levels {levels}")


@pytest.mark.parametrize("size", [1, 5, 7, 8, 9, 127, 128, 129, 136, 1000, 8193, 154401])
def test_pairwise_sum_is_numpys_to_the_bit(size):
    x = RNG.random((3, size)) * 10.0 ** RNG.integers(-6, 7, (3, size))
    expected = torch.tensor([np.sum(row) for row in x])
    assert torch.equal(sodmetrics.pairwise_sum(torch.from_numpy(x)), expected)
    # the torch replay that runs on GPUs
    assert torch.equal(sodmetrics._replayed_pairwise_sum(torch.from_numpy(x)), expected)


def tie_heavy_masks() -> list[np.ndarray]:
    """Masks full of equidistant foreground pixels: lattices, sparse dots, single pixels."""
    rng = np.random.default_rng(7)
    masks = []
    for i in range(120):
        h, w = rng.integers(1, 40, 2)
        yy, xx = np.indices((h, w))
        kind = i % 4
        if kind == 0:
            mask = rng.random((h, w)) < rng.uniform(0.01, 0.3)
        elif kind == 1:
            mask = (yy + xx) % rng.integers(2, 7) == 0
        elif kind == 2:
            mask = (yy % rng.integers(2, 6) == 0) & (xx % rng.integers(2, 6) == 0)
        else:
            mask = np.zeros((h, w), bool)
            mask[rng.integers(0, h, 3), rng.integers(0, w, 3)] = True
        if mask.any():
            masks.append(mask)
    return masks


def test_nearest_foreground_and_distance_are_scipys():
    scratch = sodmetrics._Scratch()
    for fg in tie_heavy_masks() + [blob() > 0 for _ in range(5)]:
        distance, (rows, cols) = distance_transform_edt(~fg, return_indices=True)
        squared = sodmetrics._squared_distance(~fg, scratch)
        assert np.array_equal(np.sqrt(squared), distance), f"{fg.shape} mask"
        reach = cv2.dilate(fg.view(np.uint8), np.ones((7, 7), np.uint8)).view(bool) & ~fg
        y, x = np.nonzero(reach)
        ny, nx = sodmetrics._nearest_foreground(fg, y, x, squared[y, x], scratch)
        assert np.array_equal(ny, rows[y, x]) and np.array_equal(nx, cols[y, x]), f"nearest pixels of {fg.shape} mask"


def test_importance_is_the_references_and_saturates_before_the_table_ends():
    squared = np.arange(sodmetrics._FAR, dtype=np.float64)
    expected = 2 - np.exp(np.log(0.5) / 5 * np.sqrt(squared))
    assert np.array_equal(sodmetrics._importance()[1:], expected[1:]) and sodmetrics._importance()[0] == 0
    assert expected[-1] == 2.0 and 2 - np.exp(np.log(0.5) / 5 * np.sqrt(4.0 * sodmetrics._FAR)) == 2.0
    far = np.zeros((1, 800), bool)
    far[0, 0] = True  # the last pixel lies 799 away, beyond the table
    assert sodmetrics._squared_distance(~far, sodmetrics._Scratch())[0, -1] == sodmetrics._FAR - 1
    check_against_reference([noise(2, 800)], [np.where(far, 255, 0).astype(np.uint8).repeat(2, axis=0)], "far pixels")


def test_weighted_fmeasure_on_tie_heavy_masks():
    masks = [np.where(m, 255, 0).astype(np.uint8) for m in tie_heavy_masks()[:40]]
    maps = [noise(*m.shape) for m in masks]
    for m, p in zip(masks, maps):
        check_against_reference([p], [m], f"tie-heavy {m.shape}")


@pytest.mark.parametrize("shape", [(1, 1), (1, 9), (37, 53)])
def test_level_histograms_count_every_pixel_once(shape):
    """The CPU counts with OpenCV; other devices, and images of 2^24 pixels or more, with torch."""
    h, w = shape
    levels, gt = stack([noise(h, w) for _ in range(3)]), stack([blob(h, w) for _ in range(3)]) > 128
    cy, cx = torch.tensor([0, h // 2, h]), torch.tensor([w, w // 3, 1])
    expected = torch.zeros(3, 2, 4, 256, dtype=torch.float64)
    for b, y, x in np.ndindex(3, h, w):
        expected[b, int(gt[b, 0, y, x]), 2 * int(y >= cy[b]) + int(x >= cx[b]), int(levels[b, 0, y, x])] += 1
    assert torch.equal(sodmetrics._opencv_level_histogram(levels, gt, cy, cx), expected)
    assert torch.equal(sodmetrics._torch_level_histogram(levels, gt, cy, cx), expected)


def test_prepared_maps_are_each_pixel_prepared_alone():
    """pred is looked up per 8-bit level (OpenCV on the CPU, torch elsewhere); each pixel
    equals PySOD's `prepare_data` of it, bit for bit."""
    maps = stack([noise(), np.full((H, W), 77, np.uint8), (noise() // 3 + 40).astype(np.uint8)])
    pred, _ = sodmetrics.prepare_uint8(maps, maps)
    expected = []
    for m in maps[:, 0].numpy():
        x = m / 255
        expected.append((x - x.min()) / (x.max() - x.min()) if x.max() != x.min() else x)
    assert torch.equal(pred[:, 0], torch.from_numpy(np.stack(expected)))
    levels = pred._salplug_levels
    assert torch.equal(sodmetrics._torch_lookup(levels.values, levels.levels), pred)


def test_batches_changed_in_place_are_scored_as_they_are_now():
    """A prepared batch remembers its 8-bit levels, and the metrics of one batch share what
    they compute from it; neither outlives an in-place change of the maps or the masks."""
    pred, gt = sodmetrics.prepare_uint8(stack([noise(), noise()]), stack([blob(), blob()]))
    before = ours_per_image(pred, gt)
    pred.mul_(0.5)
    gt[0] = ~gt[0]
    after, fresh = ours_per_image(pred, gt), ours_per_image(pred.clone(), gt.clone())
    for key, value in after.items():
        assert torch.allclose(value, fresh[key], rtol=0, atol=TOL, equal_nan=True), key
    assert not torch.equal(after["mae"], before["mae"]) and not torch.equal(after["sm"], before["sm"])


@pytest.mark.parametrize("prior", TESTS_DATA_PRIORS)
def test_tests_data_matches_the_reference(prior):
    _, maps, masks = dataset_pairs(TESTS_DATA, prior)
    assert len(maps) == 4 and {m.shape for m in masks} == {(64, 96), (96, 64)}
    check_against_reference(list(maps), list(masks), f"tests/data {prior}")


def test_salplug_eval_of_tests_data_equals_the_reference(tmp_path, capsys):
    """The eval command's path (pairing files by stem, reading, batching by size) scores the
    committed maps exactly as PySODMetrics scores the same files."""
    code = main(["eval", "--dataset", str(TESTS_DATA), "--priors", *TESTS_DATA_PRIORS, "--out", str(tmp_path), "--no-progress"])
    assert code == 0, capsys.readouterr()
    methods = {r["method"]: r for r in json.loads((tmp_path / "results.json").read_text())["results"]}
    assert sorted(methods) == sorted(TESTS_DATA_PRIORS)
    for prior in TESTS_DATA_PRIORS:
        _, maps, masks = dataset_pairs(TESTS_DATA, prior)
        _, expected = reference(list(maps), list(masks))
        assert methods[prior]["pairing"]["matched"] == 4 and not methods[prior]["partial"], methods[prior]
        scores = {k: v for k, v in expected.items() if np.ndim(v) == 0}
        assert_matches(methods[prior]["scores"], scores, f"salplug eval tests/data {prior}")
    # the strong stand-in detector scores as one should, the colour contrast map as a weak one does
    good, contrast = methods["good"]["scores"], methods["contrast"]["scores"]
    assert good["mae"] < contrast["mae"] and good["max_f"] > contrast["max_f"] and good["sm"] > contrast["sm"]


@pytest.mark.data
@pytest.mark.parametrize("prior", sorted(README))
def test_sod_dev_matches_the_reference_and_the_data_readme(prior):
    _, maps, masks = sod_dev_pairs(prior)
    dataset = check_against_reference(list(maps), list(masks), f"sod-dev {prior}")
    mae, adaptive_f = README[prior]
    assert round(dataset["mae"], 4) == mae, f"{prior}: expected MAE {mae} (data README), got {dataset['mae']:.6f}"
    assert round(dataset["adp_f"], 4) == adaptive_f, (
        f"{prior}: expected adaptive F {adaptive_f} (data README), got {dataset['adp_f']:.6f}"
    )


@pytest.mark.parametrize("metric", METRICS, ids=lambda m: m.name)
def test_metrics_pass_the_conformance_kit(metric):
    check_component(metric)


def test_the_six_metrics_are_registered():
    names = {"mae", "fmeasure", "smeasure", "emeasure", "wfmeasure", "overlap"}
    assert names <= set(salplug.list_components("metric"))
    assert [m.name for m in standard_metrics()] == ["mae", "fmeasure", "smeasure", "emeasure", "wfmeasure", "overlap"]


def test_components_accumulate_reset_and_report_nan_when_empty():
    fm = salplug.build("metric", "fmeasure")
    assert all(math.isnan(v) for v in fm.compute().values())
    assert fm.curves()["precision"].shape == (256,) and fm.curves()["precision"].isnan().all()
    pred, gt = sodmetrics.prepare_uint8(stack([noise(), noise()]), stack([blob(), blob()]))
    scores = fm.update(pred.float(), gt)
    assert set(scores) == {"adp_f", "mean_f", "max_f"} and scores["adp_f"].shape == (2,)
    fm.update(pred[:1], gt[:1])
    expected = torch.cat([scores["adp_f"], scores["adp_f"][:1]]).mean()
    assert fm.compute()["adp_f"] == pytest.approx(float(expected), abs=1e-6)
    fm.reset()
    assert math.isnan(fm.compute()["max_f"])


def test_bad_inputs_and_options_are_rejected():
    maps = torch.zeros(2, 1, 4, 5, dtype=torch.uint8)
    with pytest.raises(ContractError, match=r"maps: expected a uint8 B×1×H×W tensor, got torch.float32"):
        sodmetrics.prepare_uint8(maps.float(), maps)
    with pytest.raises(ContractError, match=r"masks: expected shape \(2, 1, 4, 5\)"):
        sodmetrics.prepare_uint8(maps, maps[:1])
    with pytest.raises(ContractError, match="mask: expected a bool"):
        salplug.build("metric", "smeasure").update(torch.rand(2, 1, 4, 5), torch.ones(2, 1, 4, 5))
    with pytest.raises(ConfigError, match="beta2"):
        salplug.build("metric", "fmeasure", beta2=0)
    with pytest.raises(ConfigError, match="alpha"):
        salplug.build("metric", "smeasure", alpha=1.5)
