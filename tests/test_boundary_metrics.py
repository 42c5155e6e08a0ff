"""Boundary metrics against values worked out by hand and against loop transcriptions of the
references' steps (CascadePSP's compute_boundary_acc; U²-Net's relaxF^b_β text), to 1e-6."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from salplug.metrics._boundary import (
    MBA,
    RelaxedBoundaryF,
    mba_radii,
    mean_boundary_accuracy,
    relaxed_boundary_f,
)

TOL = 1e-6


def disc(size: int, cy: float, cx: float, radius: float) -> np.ndarray:
    """An 8-bit mask (0/255) of the pixels whose centre lies within `radius` of (cy, cx)."""
    y, x = np.mgrid[:size, :size]
    return np.where((y - cy) ** 2 + (x - cx) ** 2 <= radius**2, 255, 0).astype(np.uint8)


def square(size: int = 64, top: int = 20, left: int = 20, side: int = 20) -> np.ndarray:
    m = np.zeros((size, size), np.uint8)
    m[top : top + side, left : left + side] = 255
    return m


def columns(height: int, width: int, *spans: tuple[int, int]) -> np.ndarray:
    """Full-height foreground stripes over the column ranges [start, stop)."""
    m = np.zeros((height, width), np.uint8)
    for start, stop in spans:
        m[:, start:stop] = 255
    return m


# ---- loop transcriptions, written from the references' steps --------------------------


def loop_mba(pred: np.ndarray, gt: np.ndarray) -> float:
    """compute_boundary_acc after eval_post's `> 128`, one pixel at a time."""
    h, w = gt.shape
    g = [[1 if gt[y, x] > 128 else 0 for x in range(w)] for y in range(h)]
    p = [[1 if pred[y, x] > 128 else 0 for x in range(w)] for y in range(h)]
    max_radius = (w + h) / 300
    accs = []
    for i in range(5):
        r = 1 + int((max_radius - 1) / 5 * i)
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
        offsets = [(dy - r, dx - r) for dy in range(2 * r + 1) for dx in range(2 * r + 1) if kernel[dy, dx]]
        edge = good = 0
        for y in range(h):
            for x in range(w):
                seen = {g[y + dy][x + dx] for dy, dx in offsets if 0 <= y + dy < h and 0 <= x + dx < w}
                if len(seen) == 2:  # dilation - erosion > 0
                    edge += 1
                    good += g[y][x] == p[y][x]
        accs.append(good / edge)
    return sum(accs) / 5


def loop_boundary(mask: np.ndarray) -> list[tuple[int, int]]:
    """Foreground pixels with a background pixel among their in-image 8-neighbours."""
    h, w = mask.shape
    return [
        (y, x)
        for y in range(h)
        for x in range(w)
        if mask[y, x]
        and any(
            not mask[y + dy, x + dx]
            for dy in (-1, 0, 1)
            for dx in (-1, 0, 1)
            if 0 <= y + dy < h and 0 <= x + dx < w
        )
    ]


def loop_relaxed_f(pred: np.ndarray, gt: np.ndarray, relax: int = 3, beta2: float = 0.3) -> float:
    pb, gb = loop_boundary(pred / 255 > 0.5), loop_boundary(gt > 128)

    def within(a: list, b: list) -> float:
        hits = sum(any((y - v) ** 2 + (x - u) ** 2 <= relax**2 for v, u in b) for y, x in a)
        return hits / len(a) if a else 0.0

    p, r = within(pb, gb), within(gb, pb)
    return (1 + beta2) * p * r / (beta2 * p + r) if p + r else 0.0


# ---- mBA ------------------------------------------------------------------------------


def test_mba_radius_schedule_is_cascadepsps():
    assert mba_radii(64, 64) == [1, 1, 1, 1, 1]  # int() truncates the negative steps to 0
    assert mba_radii(60, 1140) == [1, 1, 2, 2, 3]  # max = 4: 1 + int(0.6 i)
    assert mba_radii(1000, 1000) == [1, 2, 3, 4, 5]  # max = 6.67: 1 + int(1.13 i)


def test_mba_perfect_prediction_is_one():
    gt = disc(64, 31.5, 31.5, 15)
    assert mean_boundary_accuracy(gt, gt) == pytest.approx(1.0, abs=TOL)
    assert mean_boundary_accuracy(gt / 255.0, gt) == pytest.approx(1.0, abs=TOL)


def test_mba_empty_and_full_predictions_by_hand():
    # 20×20 square, radius-1 ellipse (a cross): the band is the square's 76-pixel rim plus
    # the 80 pixels edge-adjacent outside it; an empty map is right on the outer 80.
    gt = square()
    assert mean_boundary_accuracy(np.zeros_like(gt), gt) == pytest.approx(80 / 156, abs=TOL)
    assert mean_boundary_accuracy(np.full_like(gt, 255), gt) == pytest.approx(76 / 156, abs=TOL)


def test_mba_averages_over_growing_bands_by_hand():
    # 60×1140: radii 1, 1, 2, 2, 3. A vertical GT edge gives a band of 2r columns; a
    # prediction one column too wide is wrong on one of them: (2r - 1) / 2r per radius.
    gt = columns(60, 1140, (0, 570))
    pred = columns(60, 1140, (0, 571))
    expected = (1 / 2 + 1 / 2 + 3 / 4 + 3 / 4 + 5 / 6) / 5  # = 2/3
    assert mean_boundary_accuracy(pred, gt) == pytest.approx(expected, abs=TOL)


def test_mba_shifted_disc_matches_loop_transcription():
    gt = disc(64, 31.5, 31.5, 15)
    pred = disc(64, 33.5, 36.5, 15)
    expected = loop_mba(pred, gt)
    assert 0.3 < expected < 0.95
    assert mean_boundary_accuracy(pred, gt) == pytest.approx(expected, abs=TOL)
    assert mean_boundary_accuracy(pred / 255.0, gt) == pytest.approx(expected, abs=TOL)


def test_mba_thresholds_as_eval_post():
    # eval_post binarises at > 128: a map at 128 is background, at 129 foreground.
    gt = square()
    assert mean_boundary_accuracy(np.where(gt > 0, 128, 0).astype(np.uint8), gt) == pytest.approx(80 / 156, abs=TOL)
    assert mean_boundary_accuracy(np.where(gt > 0, 129, 0).astype(np.uint8), gt) == pytest.approx(1.0, abs=TOL)
    assert mean_boundary_accuracy(np.where(gt > 0, 0.5, 0.0), gt) == pytest.approx(80 / 156, abs=TOL)
    # and the GT likewise: a mask drawn at 128 is all background, so it has no boundary.
    assert math.isnan(mean_boundary_accuracy(gt, np.where(gt > 0, 128, 0).astype(np.uint8)))


def test_mba_without_gt_boundary_is_nan():
    empty = np.zeros((32, 32), np.uint8)
    assert math.isnan(mean_boundary_accuracy(empty, empty))
    assert math.isnan(mean_boundary_accuracy(empty, np.full_like(empty, 255)))


# ---- relaxed boundary F ---------------------------------------------------------------


def test_relaxed_f_perfect_and_empty_predictions():
    gt = disc(64, 31.5, 31.5, 15)
    assert relaxed_boundary_f(gt, gt) == pytest.approx(1.0, abs=TOL)
    assert relaxed_boundary_f(np.zeros_like(gt), gt) == 0.0
    assert relaxed_boundary_f(np.zeros(gt.shape), gt) == 0.0


def test_relaxed_f_slack_is_three_pixels_by_hand():
    # The frame is no boundary, so a half-plane's boundary is its one last column; a
    # prediction whose edge is k columns off is entirely matched iff k <= relax.
    gt = columns(64, 64, (0, 32))
    for k, expected in ((0, 1.0), (3, 1.0), (4, 0.0)):
        assert relaxed_boundary_f(columns(64, 64, (0, 32 + k)), gt) == pytest.approx(expected, abs=TOL), k
    assert relaxed_boundary_f(columns(64, 64, (0, 36)), gt, relax=4) == pytest.approx(1.0, abs=TOL)


def test_relaxed_f_weights_precision_by_hand():
    # GT stripe: boundary columns 10 and 29. The prediction adds a far stripe (columns 45
    # and 54): P = 2/4, R = 1, F = 1.3 · 0.5 / (0.3 · 0.5 + 1) = 0.65 / 1.15.
    gt = columns(64, 64, (10, 30))
    pred = columns(64, 64, (10, 30), (45, 55))
    assert relaxed_boundary_f(pred, gt) == pytest.approx(0.65 / 1.15, abs=TOL)
    assert relaxed_boundary_f(pred, gt, beta2=1.0) == pytest.approx(2 / 3, abs=TOL)


def test_relaxed_f_slack_is_euclidean():
    # A 20×20 square's boundary is its 76-pixel rim. Shifting the
    # prediction by (2, 2) puts each corner √8 from the GT rim (inside ρ = 3), by (3, 3) at √18.
    gt = square()
    assert relaxed_boundary_f(square(top=22, left=22), gt) == pytest.approx(1.0, abs=TOL)
    shifted = square(top=23, left=23)
    expected = loop_relaxed_f(shifted, gt)
    assert expected < 1.0
    assert relaxed_boundary_f(shifted, gt) == pytest.approx(expected, abs=TOL)


def test_relaxed_f_shifted_disc_matches_loop_transcription():
    gt = disc(64, 31.5, 31.5, 15)
    pred = disc(64, 33.5, 36.5, 15)
    expected = loop_relaxed_f(pred, gt)
    assert 0.2 < expected < 0.95
    assert relaxed_boundary_f(pred, gt) == pytest.approx(expected, abs=TOL)
    assert relaxed_boundary_f(pred / 255.0, gt) == pytest.approx(expected, abs=TOL)


def test_relaxed_f_thresholds_pred_at_half_and_gt_above_128():
    # pred > 0.5: uint8 128 (0.502) is foreground, where mBA's > 128 calls it background.
    gt = square()
    assert relaxed_boundary_f(np.where(gt > 0, 128, 0).astype(np.uint8), gt) == pytest.approx(1.0, abs=TOL)
    assert relaxed_boundary_f(np.where(gt > 0, 127, 0).astype(np.uint8), gt) == 0.0
    assert relaxed_boundary_f(np.where(gt > 0, 0.5, 0.0), gt) == 0.0
    # The GT is binarised at > 128: a mask drawn at 128 has no boundary, so F is 0.
    assert relaxed_boundary_f(gt, np.where(gt > 0, 128, 0).astype(np.uint8)) == 0.0
    assert relaxed_boundary_f(gt, np.where(gt > 0, 129, 0).astype(np.uint8)) == pytest.approx(1.0, abs=TOL)


# ---- accumulators ---------------------------------------------------------------------


def test_accumulators_average_per_image_scores():
    gt = square()
    mba, rbf = MBA(), RelaxedBoundaryF()
    for pred in (gt, np.zeros_like(gt)):
        mba.step(pred, gt)
        rbf.step(pred, gt)
    assert mba.results() == pytest.approx((1.0 + 80 / 156) / 2, abs=TOL)
    assert rbf.results() == pytest.approx(0.5, abs=TOL)


def test_accumulators_refuse_an_empty_dataset():
    for metric in (MBA(), RelaxedBoundaryF()):
        with pytest.raises(ValueError, match="at least one"):
            metric.results()


# ---- contract -------------------------------------------------------------------------


@pytest.mark.parametrize("fn", [mean_boundary_accuracy, relaxed_boundary_f])
def test_shape_mismatch_names_both_shapes(fn):
    with pytest.raises(ValueError) as err:
        fn(np.zeros((64, 65), np.uint8), np.zeros((64, 64), np.uint8))
    assert "(64, 64)" in str(err.value) and "(64, 65)" in str(err.value)


@pytest.mark.parametrize("fn", [mean_boundary_accuracy, relaxed_boundary_f])
def test_inputs_outside_the_contract_are_refused(fn):
    gt = square()
    with pytest.raises(ValueError, match="uint8"):
        fn(gt, gt.astype(bool))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        fn(gt.astype(np.float64), gt)  # 0-255 floats, not divided by 255
    with pytest.raises(ValueError, match="H×W"):
        fn(gt[None], gt[None])
