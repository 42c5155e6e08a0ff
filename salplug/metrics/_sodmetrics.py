"""SOD metrics as batched float64 tensor functions, equal to PySODMetrics 1.6.2 per image.

Inputs are `pred`, float64 ``B×1×H×W`` in [0, 1], and `gt`, bool ``B×1×H×W`` (what
`prepare_uint8` makes of 8-bit maps and masks); every function returns float64 scores per
image. Continuous quantities use torch's own summation order (within ~1e-12 of numpy).
Where the reference branches on a computed value (``pred >= 2·mean``; ssim's
``alpha == 0 and beta == 0``) a last-bit difference flips the branch, so those means are
summed in numpy's order (`pairwise_sum`) or the branch is decided exactly.

A batch that `prepare_uint8` made holds at most 256 values per image, so MAE, the F- and
E-measures, IoU, Dice and the S-measure come from one pixel count per (mask, quadrant,
8-bit level) of each image; other maps are scored from their pixels. The metrics called in
turn on the same batch share that work (`_shared`).

The weighted F-measure's distance work runs on the CPU, an image per worker thread;
everything else runs on the inputs' device.
"""

from __future__ import annotations

import functools
import math
import threading
import weakref
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import cv2
import numpy as np
import torch
from torch import Tensor

from salplug.errors import ContractError

EPS = float(np.spacing(1))
"""The reference's guard against division by zero (MATLAB's eps)."""

LEVELS = 256
"""Thresholds of the curves; index i is threshold 255 - i, as in the reference."""

_LANES = 8
"""Interleaved copies of every histogram bin (see `_lanes`)."""

_BLOCK = 128
"""numpy's pairwise-summation leaf size (PW_BLOCKSIZE); leaves sum in 8 interleaved lanes."""


_WINDOW = np.ones((7, 7), np.uint8)
"""The weighted F-measure's Gaussian window, as a dilation footprint."""

_REACH = 18
"""Squared reach of a 7×7 window: a pixel it covers lies at most √18 from its centre."""


def _rings() -> np.ndarray:
    """``(_REACH + 1)×8×2``: row k lists the offsets of squared length k, leftmost first, then
    topmost (the order in which scipy's feature transform breaks ties), padded with its last."""
    rings = np.zeros((_REACH + 1, 8, 2), np.int64)
    for k in range(1, _REACH + 1):
        ring = sorted(
            ((dy, dx) for dy in range(-4, 5) for dx in range(-4, 5) if dy * dy + dx * dx == k), key=lambda o: (o[1], o[0])
        )
        if ring:
            rings[k] = ring + ring[-1:] * (8 - len(ring))
    return rings


_RINGS = _rings()

_FAR = 1 << 17
"""Squared distances from here on weigh exactly 2 (2 - 0.5^(√k/5) rounds to 2 from k = 70225)."""


@functools.cache
def _importance() -> np.ndarray:
    """The reference's importance 2 - exp(ln(0.5)/5 · √k) of a background pixel at squared
    distance k from the foreground, for k below `_FAR`; 0 at k = 0, the foreground itself."""
    table = 2 - np.exp(np.log(0.5) / 5 * np.sqrt(np.arange(_FAR, dtype=np.float64)))
    table[0] = 0.0
    return table


_GAUSS = np.exp(-np.arange(-3.0, 4.0) ** 2 / (2 * 5**2))
_GAUSS /= _GAUSS.sum()
"""MATLAB's fspecial('gaussian', 7, 5) is the outer product of this with itself (its
cut-off below eps · max removes nothing at this size)."""


class _Levels(NamedTuple):
    """The 8-bit maps behind a batch made by `prepare_uint8`: ``pred[b] == values[b][levels[b]]``."""

    levels: Tensor  # uint8 B×1×H×W, a copy of the maps
    values: Tensor  # float64 B×256: each image's prepared value of every 8-bit level
    version: int  # pred's version counter when made: an in-place change makes the levels stale


def prepare_uint8(maps: Tensor, masks: Tensor) -> tuple[Tensor, Tensor]:
    """PySOD's `prepare_data` on a batch: maps / 255, min-max stretched unless constant; masks > 128.

    The maps take at most 256 values per image, so the metrics score such a batch from
    per-level histograms; `pred` remembers its levels for them until it is changed in place.
    """
    for what, x in (("maps", maps), ("masks", masks)):
        if not isinstance(x, Tensor) or x.dtype != torch.uint8 or x.ndim != 4 or x.shape[1] != 1:
            got = f"{x.dtype} tensor of shape {tuple(x.shape)}" if isinstance(x, Tensor) else type(x).__name__
            raise ContractError(f"{what}: expected a uint8 B×1×H×W tensor, got {got}")
    if maps.shape != masks.shape:
        raise ContractError(f"masks: expected shape {tuple(maps.shape)} to match the maps, got {tuple(masks.shape)}")
    levels = maps.clone(memory_format=torch.contiguous_format)
    lo = levels.amin(dim=(1, 2, 3)).double().view(-1, 1) / 255
    hi = levels.amax(dim=(1, 2, 3)).double().view(-1, 1) / 255
    constant = hi == lo
    values = torch.arange(LEVELS, dtype=torch.float64, device=maps.device).div(255).expand(maps.shape[0], -1)
    values = values.sub(lo.masked_fill(constant, 0.0)).div_((hi - lo).masked_fill(constant, 1.0))
    pred = _lookup(values, levels)
    pred._salplug_levels = _Levels(levels, values, pred._version)
    return pred, masks > 128


def _lookup(values: Tensor, levels: Tensor) -> Tensor:
    """``values[b][levels[b]]`` for every image: the same numbers as computing each pixel alone."""
    if levels.device.type != "cpu":
        return _torch_lookup(values, levels)
    pred = torch.empty(levels.shape, dtype=torch.float64)
    out, source, table = pred.numpy(), levels.numpy(), values.numpy()
    for b in range(levels.shape[0]):
        cv2.LUT(source[b, 0], table[b], dst=out[b, 0])
    return pred


def _torch_lookup(values: Tensor, levels: Tensor) -> Tensor:
    """`_lookup` on any device."""
    first = LEVELS * torch.arange(levels.shape[0], device=levels.device).view(-1, 1, 1, 1)
    return values.take(levels.long() + first)


def _levels_of(pred: Tensor) -> _Levels | None:
    """The 8-bit levels behind `pred`, if `prepare_uint8` made it and it is unchanged since."""
    levels = getattr(pred, "_salplug_levels", None)
    return levels if levels is not None and levels.version == pred._version else None


class _Plan(NamedTuple):
    rows: list[tuple[Tensor, Tensor | None]]  # per lane step: each leaf's 8-value row, 0/1 weights once some are done
    merges: list[tuple[Tensor, Tensor, Tensor]]  # per tree level: node ids, left ids, right ids


@functools.lru_cache(maxsize=32)
def _pairwise_plan(n: int, device: torch.device) -> _Plan:
    """numpy's pairwise-summation tree for n >= 8 contiguous values, as gather indices.

    Every leaf but the last holds a multiple of 8 values, so each leaf is a run of rows of
    the ``N/8 × 8`` view, and step j of its lanes adds row ``first + j``.
    """
    leaves: list[tuple[int, int]] = []
    nodes: list[tuple[int, int, int]] = []  # (left ref, right ref, height); refs: leaf i -> i, node j -> ~j

    def split(start: int, size: int) -> tuple[int, int]:
        if size <= _BLOCK:
            leaves.append((start, size))
            return len(leaves) - 1, 0
        half = size // 2 - (size // 2) % 8
        (left, hl), (right, hr) = split(start, half), split(start + half, size - half)
        nodes.append((left, right, 1 + max(hl, hr)))
        return ~(len(nodes) - 1), nodes[-1][2]

    split(0, n)
    first = torch.tensor([s // 8 for s, _ in leaves], device=device)
    steps = torch.tensor([m // 8 for _, m in leaves], device=device)
    rows = []
    for j in range(int(steps.max())):
        live = steps > j
        weight = None if bool(live.all()) else live.to(torch.float64).view(-1, 1, 1)
        rows.append((torch.where(live, first + j, 0), weight))
    count = len(leaves)

    def ref(r: int) -> int:
        return r if r >= 0 else count + ~r

    merges = []
    for height in range(1, max((h for *_, h in nodes), default=0) + 1):
        level = [(count + j, ref(a), ref(b)) for j, (a, b, h) in enumerate(nodes) if h == height]
        merges.append(tuple(torch.tensor(col, device=device) for col in zip(*level)))
    return _Plan(rows, merges)


def pairwise_sum(x: Tensor) -> Tensor:
    """Sum of each row of a ``B×N`` tensor in numpy's exact order (`np.sum` of a contiguous array).

    On the CPU numpy itself sums (the reference's own order, whatever numpy is installed);
    on other devices `_replayed_pairwise_sum` replays numpy's tree with torch ops.
    """
    if x.device.type == "cpu":
        return torch.from_numpy(np.add.reduce(x.detach().contiguous().numpy(), axis=1))
    return _replayed_pairwise_sum(x)


def _replayed_pairwise_sum(x: Tensor) -> Tensor:
    """numpy's pairwise summation on any device: halves (rounded down to multiples of 8)
    until at most 128 values remain, those summed in 8 interleaved lanes, halves added back."""
    batch, n = x.shape
    if n < 8:
        total = x[:, 0]
        for i in range(1, n):
            total = total + x[:, i]
        return total
    plan = _pairwise_plan(n, x.device)
    body = x[:, : n - n % 8].reshape(batch, -1, 8).transpose(0, 1).contiguous()  # rows first: fast gathers
    r = body.index_select(0, plan.rows[0][0])
    for index, weight in plan.rows[1:]:
        row = body.index_select(0, index)
        r = r + (row if weight is None else row * weight)
    leaf = ((r[..., 0] + r[..., 1]) + (r[..., 2] + r[..., 3])) + ((r[..., 4] + r[..., 5]) + (r[..., 6] + r[..., 7]))
    for i in range(n - n % 8, n):
        leaf[-1] = leaf[-1] + x[:, i]
    if not plan.merges:
        return leaf[0]
    values = leaf.new_empty(leaf.shape[0] + sum(len(ids) for ids, _, _ in plan.merges), batch)
    values[: leaf.shape[0]] = leaf
    for ids, left, right in plan.merges:
        values[ids] = values[left] + values[right]
    return values[-1]


def _error(pred: Tensor, gt: Tensor) -> Tensor:
    """``|pred - gt|`` in one new tensor, worked in place: on small VMs each extra fresh
    buffer costs more in page faults than the arithmetic."""
    return gt.to(pred.dtype).sub_(pred).abs_()


def adaptive_threshold(pred: Tensor) -> Tensor:
    """``min(2·mean, 1)`` per image, the mean summed as numpy sums it (pixels at it count)."""
    return (2 * (pairwise_sum(pred.flatten(1)) / pred[0].numel())).clamp(max=1)


def _lanes(width: int, device: torch.device) -> Tensor:
    """Each column's copy of a histogram bin: neighbouring pixels mostly share a bin, and
    counting them into one copy serialises on it, so they count into `_LANES` copies."""
    return torch.arange(width, dtype=torch.int32, device=device) % _LANES


def _bincount(keys: Tensor, bins: int, weights: Tensor | None = None) -> Tensor:
    """Counts (or sums of `weights`) per bin of keys ``bin·_LANES + lane``."""
    return torch.bincount(keys.view(-1), weights, minlength=bins * _LANES).view(bins, _LANES).sum(dim=1)


class _Counts(NamedTuple):
    tp: Tensor  # B: foreground pixels at or above the adaptive threshold
    predicted: Tensor  # B: pixels at or above the adaptive threshold
    fg: Tensor  # B: foreground pixels
    tp_above: Tensor  # B×256: foreground pixels whose 8-bit level ⌊255·pred⌋ is >= 255 - i
    predicted_above: Tensor  # B×256: pixels whose 8-bit level is >= 255 - i


def _counts(pred: Tensor, gt: Tensor) -> _Counts:
    """Every count the F-, E- and overlap measures need, from one histogram per image over
    (mask, adaptive binarisation, 8-bit level)."""
    batch, _, _, w = pred.shape
    binary = pred >= adaptive_threshold(pred).view(-1, 1, 1, 1)
    key = (pred * 255).to(torch.int32)  # the 8-bit level: truncates, as numpy's astype(np.uint8)
    key.add_(gt, alpha=2 * LEVELS).add_(binary, alpha=LEVELS)
    first = 4 * LEVELS * torch.arange(batch, dtype=torch.int32, device=pred.device).view(-1, 1, 1, 1)
    key.mul_(_LANES).add_(first * _LANES + _lanes(w, pred.device))
    hist = _bincount(key, 4 * LEVELS * batch).view(batch, 2, 2, LEVELS)  # image, gt, binary, level
    adaptive = hist[:, :, 1].sum(dim=-1)
    above = hist.sum(dim=2).flip(-1).cumsum(-1)
    return _Counts(adaptive[:, 1], adaptive.sum(dim=1), above[:, 1, -1], above[:, 1], above.sum(dim=1))


def _emeasure(tp: Tensor, predicted: Tensor, fg: Tensor, size: int) -> Tensor:
    """E-measure from counts: each of the four (pred, gt) parts is uniform, so the enhanced
    alignment matrix sums in closed form."""
    tp, predicted, fg = tp.double(), predicted.double(), fg.double()
    background = size - predicted
    pred_fg, gt_fg = 1 - predicted / size, 1 - fg / size
    pred_bg, gt_bg = -(predicted / size), -(fg / size)
    parts = (
        (tp, pred_fg, gt_fg),
        (predicted - tp, pred_fg, gt_bg),
        (fg - tp, pred_bg, gt_fg),
        (background - (fg - tp), pred_bg, gt_bg),
    )
    total = torch.zeros_like(tp)
    for count, a, b in parts:
        align = 2 * (a * b) / (a**2 + b**2 + EPS)
        total = total + (align + 1) ** 2 / 4 * count
    total = torch.where(fg == 0, background, torch.where(fg == size, predicted, total))
    return total / (size - 1 + EPS)


def emeasure(pred: Tensor, gt: Tensor) -> tuple[Tensor, Tensor]:
    """E-measure of ``pred >= min(2·mean, 1)``, and at the 256 levels, ``B×256`` (index i:
    threshold 255 - i)."""
    c = _shared(pred, gt).counts
    size = pred[0].numel()
    adaptive = _emeasure(c.tp, c.predicted, c.fg, size)
    return adaptive, _emeasure(c.tp_above, c.predicted_above, c.fg.view(-1, 1), size)


def overlap_adaptive(pred: Tensor, gt: Tensor) -> tuple[Tensor, Tensor]:
    """IoU and Dice of ``pred >= min(2·mean, 1)``; 0 where the denominator is 0."""
    c = _shared(pred, gt).counts
    tp, fp, fn = c.tp.double(), (c.predicted - c.tp).double(), (c.fg - c.tp).double()
    union, sizes = tp + fp + fn, tp + fn + tp + fp
    iou = torch.where(union != 0, tp / union, 0.0)
    dice = torch.where(sizes != 0, 2 * tp / sizes, 0.0)
    return iou, dice


def overlap_curves(pred: Tensor, gt: Tensor) -> tuple[Tensor, Tensor]:
    """IoU and Dice at the 256 levels, ``B×256`` (index i: threshold 255 - i), from the
    F-measure's counts; 0 where the denominator is 0."""
    c = _shared(pred, gt).counts
    tp, predicted, fg = c.tp_above.double(), c.predicted_above.double(), c.fg.view(-1, 1).double()
    union, sizes = predicted + fg - tp, fg + predicted
    iou = torch.where(union != 0, tp / union, 0.0)
    dice = torch.where(sizes != 0, 2 * tp / sizes, 0.0)
    return iou, dice


def _profiles(gt: Tensor) -> tuple[Tensor, Tensor]:
    """Foreground pixels per row (``B×H``) and per column (``B×W``), int32."""
    return gt[:, 0].sum(dim=2, dtype=torch.int32), gt[:, 0].sum(dim=1, dtype=torch.int32)


def _centroid(per_row: Tensor, per_col: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Foreground count and the reference's split point: the centroid rounded half to even, plus one."""
    per_row, per_col = per_row.double(), per_col.double()
    fg = per_row.sum(dim=1)
    rows = torch.arange(per_row.shape[1], device=per_row.device, dtype=torch.float64)
    cols = torch.arange(per_col.shape[1], device=per_col.device, dtype=torch.float64)
    cy = (per_row * rows).sum(dim=1) / fg.clamp(min=1)
    cx = (per_col * cols).sum(dim=1) / fg.clamp(min=1)
    return fg, cy.round().long() + 1, cx.round().long() + 1


def _cells(pred: Tensor, gt: Tensor, cy: Tensor, cx: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Pixel count, mean and sum of squared deviations (two-pass) of each (gt, quadrant) cell.

    Shapes ``B×2×4``: dim 1 is background/foreground, dim 2 the quadrants left-top,
    right-top, left-bottom, right-bottom of the split at (cy, cx). Means of empty cells are NaN.
    """
    batch, _, h, w = pred.shape
    device = pred.device
    bottom = torch.arange(h, device=device).view(1, 1, h, 1) >= cy.view(-1, 1, 1, 1)
    right = torch.arange(w, device=device).view(1, 1, 1, w) >= cx.view(-1, 1, 1, 1)
    first = 8 * torch.arange(batch, device=device).view(-1, 1, 1, 1)
    cell = gt.to(torch.int32).mul_(4 * _LANES)
    cell += ((first + 2 * bottom) * _LANES).to(torch.int32)
    cell += right.to(torch.int32) * _LANES + _lanes(w, device)
    values = pred.reshape(-1)
    count = _bincount(cell, 8 * batch).double()
    mean = _bincount(cell, 8 * batch, values) / count
    deviation = mean.repeat_interleave(_LANES).index_select(0, cell.view(-1)).sub_(values)
    m2 = _bincount(cell, 8 * batch, deviation.mul_(deviation))
    return count.view(batch, 2, 4), mean.view(batch, 2, 4), m2.view(batch, 2, 4)


def _level_histogram(levels: Tensor, gt: Tensor, cy: Tensor, cx: Tensor) -> Tensor:
    """Pixels per (mask, quadrant, 8-bit level) of each image, float64 ``B×2×4×256``; the
    quadrants are left-top, right-top, left-bottom, right-bottom of the split at (cy, cx)."""
    if levels.device.type == "cpu" and levels[0].numel() < 2**24:  # OpenCV counts in float32: exact below 2^24
        return _opencv_level_histogram(levels, gt, cy, cx)
    return _torch_level_histogram(levels, gt, cy, cx)


def _torch_level_histogram(levels: Tensor, gt: Tensor, cy: Tensor, cx: Tensor) -> Tensor:
    """`_level_histogram` on any device, one bincount of a key per pixel."""
    batch, _, h, w = levels.shape
    device = levels.device
    bottom = torch.arange(h, device=device).view(1, 1, h, 1) >= cy.to(device).view(-1, 1, 1, 1)
    right = torch.arange(w, device=device).view(1, 1, 1, w) >= cx.to(device).view(-1, 1, 1, 1)
    cell = gt * 4 + bottom * 2 + right + 8 * torch.arange(batch, device=device).view(-1, 1, 1, 1)
    key = levels.long() + LEVELS * cell
    return torch.bincount(key.view(-1), minlength=8 * LEVELS * batch).view(batch, 2, 4, LEVELS).double()


def _opencv_level_histogram(levels: Tensor, gt: Tensor, cy: Tensor, cx: Tensor) -> Tensor:
    """`_level_histogram` on the CPU, a 2-D histogram of (level, mask) per quadrant."""
    batch, _, h, w = levels.shape
    hist = np.zeros((batch, 4, LEVELS, 2), np.float32)
    source, mask = levels[:, 0].numpy(), gt[:, 0].numpy().view(np.uint8)
    for b, (top, left) in enumerate(zip(cy.tolist(), cx.tolist())):
        for q, (rows, cols) in enumerate(_quadrants(top, left, h, w)):
            if rows.start < rows.stop and cols.start < cols.stop:
                cv2.calcHist([source[b, rows, cols], mask[b, rows, cols]], [0, 1], None, [LEVELS, 2], [0, LEVELS, 0, 2],
                             hist=hist[b, q])
    return torch.from_numpy(hist).permute(0, 3, 1, 2).double()


def _quadrants(top: int, left: int, h: int, w: int) -> tuple[tuple[slice, slice], ...]:
    """Rows and columns of the quadrants left-top, right-top, left-bottom, right-bottom."""
    upper, lower, before, after = slice(0, top), slice(top, h), slice(0, left), slice(left, w)
    return (upper, before), (upper, after), (lower, before), (lower, after)


def _level_counts(hist: Tensor, values: Tensor, threshold: Tensor) -> _Counts:
    """`_counts` from per-(mask, level) pixel counts ``B×2×256``: the adaptive binarisation and
    the curves' 8-bit level ⌊255·pred⌋ are both functions of the level."""
    binary = values >= threshold.view(-1, 1)
    adaptive = (hist * binary.unsqueeze(1)).sum(dim=-1).long()
    curve_level = (values * 255).to(torch.int64)  # truncates, as astype(np.uint8)
    curve_level = curve_level.clamp_(0, LEVELS - 1).unsqueeze(1).expand_as(hist)  # levels absent from a map: any bin
    by_curve = torch.zeros_like(hist).scatter_add_(2, curve_level, hist)
    above = by_curve.flip(-1).cumsum(-1).long()
    return _Counts(adaptive[:, 1], adaptive.sum(dim=1), above[:, 1, -1], above[:, 1], above.sum(dim=1))


def _level_cells(hist: Tensor, values: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """`_cells` from per-(mask, quadrant, level) pixel counts: mean and squared deviations
    summed over levels (two-pass)."""
    values = values.view(-1, 1, 1, LEVELS)
    count = hist.sum(dim=-1)
    mean = (hist * values).sum(dim=-1) / count
    deviation = values - torch.where(count > 0, mean, 0.0).unsqueeze(-1)
    return count, mean, (hist * deviation.square()).sum(dim=-1)


class _Batch:
    """What several metrics of one (pred, gt) batch share, each part made once, on first use:
    from per-level histograms when `prepare_uint8` made `pred`, else from its pixels."""

    def __init__(self, pred: Tensor, gt: Tensor):
        self._refs = weakref.ref(pred), weakref.ref(gt)
        self._versions = pred._version, gt._version
        self._levels = _levels_of(pred)

    def holds(self, pred: Tensor, gt: Tensor) -> bool:
        """Whether this is `pred` and `gt`'s batch, neither changed in place since."""
        return (
            self._refs[0]() is pred and self._refs[1]() is gt and self._versions == (pred._version, gt._version)
        )

    @property
    def pred(self) -> Tensor:
        return self._refs[0]()

    @property
    def gt(self) -> Tensor:
        return self._refs[1]()

    @functools.cached_property
    def profiles(self) -> tuple[Tensor, Tensor]:
        return _profiles(self.gt)

    @functools.cached_property
    def centroid(self) -> tuple[Tensor, Tensor, Tensor]:
        return _centroid(*self.profiles)

    @functools.cached_property
    def histogram(self) -> Tensor:
        """Pixels per (mask, quadrant, level), ``B×2×4×256`` (8-bit batches only)."""
        _, cy, cx = self.centroid
        return _level_histogram(self._levels.levels, self.gt, cy, cx)

    @functools.cached_property
    def counts(self) -> _Counts:
        if self._levels is None:
            return _counts(self.pred, self.gt)
        return _level_counts(self.histogram.sum(dim=2), self._levels.values, adaptive_threshold(self.pred))

    @functools.cached_property
    def cells(self) -> tuple[Tensor, Tensor, Tensor]:
        if self._levels is None:
            _, cy, cx = self.centroid
            return _cells(self.pred, self.gt, cy, cx)
        return _level_cells(self.histogram, self._levels.values)

    @functools.cached_property
    def mae(self) -> Tensor:
        """Mean of ``|pred - gt|`` per image."""
        if self._levels is None:
            return _error(self.pred, self.gt).flatten(1).mean(dim=1)
        hist, values = self.histogram.sum(dim=2), self._levels.values
        return ((hist[:, 0] * values).sum(dim=1) + (hist[:, 1] * (1 - values)).sum(dim=1)) / self.pred[0].numel()

    @functools.cached_property
    def mean(self) -> Tensor:
        """Mean of pred per image."""
        if self._levels is None:
            return self.pred.flatten(1).mean(dim=1)
        return (self.histogram.sum(dim=(1, 2)) * self._levels.values).sum(dim=1) / self.pred[0].numel()


_recent = threading.local()


def _shared(pred: Tensor, gt: Tensor) -> _Batch:
    """The `_Batch` of (pred, gt): this thread's last one when it holds them, else a new one.

    Each metric component scores the same prepared batch in turn, so they share one.
    """
    batch = getattr(_recent, "batch", None)
    if batch is None or not batch.holds(pred, gt):
        batch = _recent.batch = _Batch(pred, gt)
    return batch


def mae(pred: Tensor, gt: Tensor) -> Tensor:
    """Mean absolute error per image."""
    return _shared(pred, gt).mae


def fmeasure(pred: Tensor, gt: Tensor, beta2: float = 0.3) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """F-measure of ``pred >= min(2·mean, 1)`` (0 where nothing true is found), and precision,
    recall and F-measure at the 256 levels, ``B×256`` (index i: threshold 255 - i)."""
    c = _shared(pred, gt).counts
    tp, fg = c.tp.double(), c.fg.clamp(min=1).double()
    precision = tp / c.predicted.clamp(min=1)
    recall = tp / fg
    adaptive = torch.where(tp == 0, 0.0, (1 + beta2) * precision * recall / (beta2 * precision + recall))
    tp = c.tp_above.double()
    precision = tp / c.predicted_above.clamp(min=1)
    recall = tp / fg.view(-1, 1)
    numerator = (1 + beta2) * precision * recall
    f = numerator / torch.where(numerator == 0, 1.0, beta2 * precision + recall)
    return adaptive, precision, recall, f


def _merge(count: Tensor, mean: Tensor, m2: Tensor, dim: int) -> tuple[Tensor, Tensor, Tensor]:
    """Count, mean and squared deviations of cells merged along `dim` (Chan's parallel
    formula: exact algebra, and no cancellation, so the two-pass accuracy is kept)."""
    n = count.sum(dim=dim)
    filled = count > 0
    merged = torch.where(filled, count * mean, 0.0).sum(dim=dim) / n
    between = torch.where(filled, m2 + count * (mean - merged.unsqueeze(dim)) ** 2, 0.0)
    return n, merged, between.sum(dim=dim)


def _s_object(n: Tensor, mean: Tensor, m2: Tensor) -> Tensor:
    std = torch.where(n > 1, (m2 / (n - 1)).sqrt(), 0.0)
    return 2 * mean / (mean**2 + 1 + std + EPS)


def _uniform_ssim(pred: Tensor, uniform: Tensor, cy: Tensor, cx: Tensor) -> Tensor:
    """ssim of quadrants whose mask is uniform: 1 where the reference's variance of the map is
    exactly 0 (the map is constant and numpy's mean of it rounds back to that constant), else 0."""
    h, w = pred.shape[2:]
    ssim = torch.zeros(uniform.shape, dtype=torch.float64)
    for b, q in uniform.nonzero().tolist():
        top, left = int(cy[b]), int(cx[b])
        rows = slice(0, top) if q < 2 else slice(top, h)
        cols = slice(0, left) if q % 2 == 0 else slice(left, w)
        lo, hi = torch.aminmax(pred[b, 0, rows, cols])
        c = float(lo)
        if c == float(hi) and np.full((h, w), c)[rows, cols].mean() == c:
            ssim[b, q] = 1.0
    return ssim.to(pred.device)


def smeasure(pred: Tensor, gt: Tensor, alpha: float = 0.5) -> Tensor:
    """Structure measure: object-aware and region-aware (4-quadrant ssim) similarity.

    NaN where the reference's is: a centroid in the last row or column leaves a quadrant
    empty, and the reference averages it (1×N and N×1 images always do).
    """
    h, w = pred.shape[2:]
    area = h * w
    batch = _shared(pred, gt)
    fg, cy, cx = batch.centroid
    y = fg / area
    count, mean, m2 = batch.cells

    n_bg, mean_bg, m2_bg = _merge(count[:, 0], mean[:, 0], m2[:, 0], dim=1)
    n_fg, mean_fg, m2_fg = _merge(count[:, 1], mean[:, 1], m2[:, 1], dim=1)
    obj = _s_object(n_fg, mean_fg, m2_fg) * y + _s_object(n_bg, 1 - mean_bg, m2_bg) * (1 - y)

    n, x, m2_x = _merge(count, mean, m2, dim=1)
    n0, n1 = count[:, 0], count[:, 1]
    mixed = n0 * n1 > 0
    yq = n1 / n
    denominator = n - 1 + EPS
    sigma_x = m2_x / denominator
    sigma_y = n0 * n1 / n / denominator
    sigma_xy = torch.where(mixed, n0 * n1 * (mean[:, 1] - mean[:, 0]) / n / denominator, 0.0)
    a = 4 * x * yq * sigma_xy
    b = (x**2 + yq**2) * (sigma_x + sigma_y)
    uniform = ~mixed & (n > 0) & ((y > 0) & (y < 1)).view(-1, 1)
    ssim = torch.where(mixed, a / (b + EPS), _uniform_ssim(pred, uniform.cpu(), cy.cpu(), cx.cpu()))
    ssim = torch.where(n > 0, ssim, math.nan)
    top, left = cy.double(), cx.double()
    w_lt = left * top / area
    w_rt = top * (w - left) / area
    w_lb = (h - top) * left / area
    scores = ssim * torch.stack([w_lt, w_rt, w_lb, 1 - w_lt - w_rt - w_lb], dim=1)
    region = ((scores[:, 0] + scores[:, 1]) + scores[:, 2]) + scores[:, 3]
    sm = (obj * alpha + region * (1 - alpha)).clamp(min=0)
    return torch.where(y == 0, 1 - batch.mean, torch.where(y == 1, batch.mean, sm))


class _Scratch:
    """A worker thread's arrays for `_weighted_sums`, grown to the largest image yet and
    reused: on small VMs first-touching fresh memory costs more than the arithmetic."""

    def __init__(self):
        self._buffers: dict[str, np.ndarray] = {}

    def take(self, name: str, dtype: type, *shape: int) -> np.ndarray:
        size = math.prod(shape)
        buffer = self._buffers.get(name)
        if buffer is None or buffer.size < size:
            buffer = self._buffers[name] = np.empty(size, dtype)
        return buffer[:size].reshape(shape)


def _nearest_foreground(
    fg: np.ndarray, y: np.ndarray, x: np.ndarray, d2: np.ndarray, s: _Scratch
) -> tuple[np.ndarray, np.ndarray]:
    """Row and column of the nearest foreground pixel to each pixel (y, x), at squared
    distance `d2` (1 to 18) from it, ties broken as scipy's feature transform (the
    reference's) breaks them.

    scipy first keeps, in every column, the nearest foreground pixel (the upper one on a
    tie), then, along the row, the column whose pixel is nearest (the leftmost on a tie):
    among the nearest pixels it returns the leftmost, then the topmost. `_RINGS` lists the
    offsets at each squared distance in that order, so the first foreground pixel met is scipy's.
    """
    h, w = fg.shape
    padded = s.take("padded", np.bool_, h + 8, w + 8)
    padded[:] = False
    padded[4:-4, 4:-4] = fg
    start = (y + 4) * (w + 8) + (x + 4)
    ring = _RINGS[d2]
    first = padded.ravel()[start[:, None] + ring[..., 0] * (w + 8) + ring[..., 1]].argmax(axis=1)
    step = ring[np.arange(len(first)), first]
    return y + step[:, 0], x + step[:, 1]


def _squared_distance(background: np.ndarray, s: _Scratch) -> np.ndarray:
    """Each pixel's squared distance to the nearest foreground pixel, int32, exact below
    `_FAR` and `_FAR - 1` from there on: OpenCV's exact transform gives float32 distances,
    whose squares round back to the integers they are this far."""
    h, w = background.shape
    distance = s.take("distance", np.float32, h, w)
    cv2.distanceTransform(background.view(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE, dst=distance)
    squared = s.take("squared", np.int32, h, w)
    cv2.multiply(distance, distance, dst=squared, dtype=cv2.CV_32S)
    return np.minimum(squared, _FAR - 1, out=squared)


def _window(pred: np.ndarray, box: tuple[slice, slice], s: _Scratch) -> tuple[slice, slice]:
    """The smallest window holding `box` and every pixel where pred is not 0."""
    nonzero = np.not_equal(pred, 0, out=s.take("nonzero", np.bool_, *pred.shape))
    x, y, w, h = cv2.boundingRect(nonzero.view(np.uint8))
    if w == 0:
        return box
    rows, cols = box
    return slice(min(rows.start, y), max(rows.stop, y + h)), slice(min(cols.start, x), max(cols.stop, x + w))


def _weighted_sums(pred: np.ndarray, fg: np.ndarray, box: tuple[slice, slice], s: _Scratch) -> tuple[float, float]:
    """One image's weighted errors: Σ min(E, EA) over the foreground, and
    Σ E·(2 - exp(ln(0.5)/5 · D)) over the background (E = |pred - fg|, which is pred on the
    background; D: distance to the foreground).

    EA is the 7×7 Gaussian (zero border) of the error carried over from each pixel's
    nearest foreground pixel. It is only read on the foreground, so it is made on `box`
    (the foreground's bounding box plus 3 pixels), and only the background pixels that a
    foreground pixel's window reaches need their nearest foreground pixel. Background
    pixels where pred is 0 weigh nothing, so all of it is made on `_window`.
    """
    window = _window(pred, box, s)
    pred, fg = pred[window], fg[window]
    box = tuple(slice(inner.start - outer.start, inner.stop - outer.start) for inner, outer in zip(box, window))
    h, w = fg.shape
    squared = _squared_distance(np.logical_not(fg, out=s.take("background", np.bool_, h, w)), s)
    importance = np.take(_importance(), squared, out=s.take("importance", np.float64, h, w))
    on_bg = float(np.multiply(pred, importance, out=importance).sum())

    shape = (box[0].stop - box[0].start, box[1].stop - box[1].start)
    inside = fg[box]
    error = np.subtract(pred[box], inside, out=s.take("error", np.float64, *shape), dtype=np.float64)
    np.abs(error, out=error)
    reached = cv2.dilate(inside.view(np.uint8), _WINDOW, dst=s.take("reached", np.uint8, *shape)).view(np.bool_)
    band = np.flatnonzero(np.logical_and(reached, np.logical_not(inside), out=reached))
    y, x = np.divmod(band, shape[1])
    carried = s.take("carried", np.float64, *shape)
    np.copyto(carried, error)
    carried.ravel()[band] = error[_nearest_foreground(inside, y, x, squared[box][y, x], s)]
    blurred = s.take("blurred", np.float64, *shape)
    cv2.sepFilter2D(carried, -1, _GAUSS, _GAUSS, dst=blurred, borderType=cv2.BORDER_CONSTANT)
    on_fg = float(np.minimum(error, blurred, out=blurred).sum(where=inside))
    return on_fg, on_bg


def _boxes(per_row: Tensor, per_col: Tensor) -> list[tuple[slice, slice]]:
    """Each image's foreground bounding box plus 3 pixels (the reach of a 7×7 window), from
    its foreground pixels per row and per column."""
    spans = []
    for profile in (per_row, per_col):
        size, filled = profile.shape[1], (profile > 0).to(torch.uint8)
        first = filled.argmax(dim=1)
        last = size - 1 - filled.flip(1).argmax(dim=1)
        spans.append(zip((first - 3).clamp(min=0).tolist(), (last + 4).clamp(max=size).tolist()))
    return [(slice(*r), slice(*c)) for r, c in zip(*spans)]


@functools.cache
def _workers(threads: int) -> ThreadPoolExecutor:
    """`threads` threads that run `_weighted_sums`, kept so that their scratch arrays
    (`_scratch`) outlive a call."""
    return ThreadPoolExecutor(max_workers=threads, thread_name_prefix="salplug-wfm")


_local = threading.local()


def _scratch() -> _Scratch:
    """This thread's `_Scratch`."""
    if not hasattr(_local, "scratch"):
        _local.scratch = _Scratch()
    return _local.scratch


def weighted_fmeasure(pred: Tensor, gt: Tensor, beta: float = 1.0) -> Tensor:
    """Weighted F-measure (Margolin et al.); 0 for images without foreground.

    Its per-pixel work runs on the CPU, an image per worker thread, one per torch thread
    (OpenCV and numpy release the GIL).
    """
    batch = pred.shape[0]
    values, mask = pred[:, 0].cpu().numpy(), gt[:, 0].cpu().numpy()
    per_row, per_col = _shared(pred, gt).profiles
    boxes = _boxes(per_row.cpu(), per_col.cpu())
    fg = per_row.sum(dim=1).double()
    jobs = fg.nonzero().flatten().tolist()
    weighted = torch.zeros(2, batch, dtype=torch.float64)
    threads = torch.get_num_threads()
    run = _workers(threads).map if min(threads, len(jobs)) > 1 else map  # one thread: this one
    sums = run(lambda i: _weighted_sums(values[i], mask[i], boxes[i], _scratch()), jobs)
    for i, pair in zip(jobs, sums):
        weighted[:, i] = torch.tensor(pair, dtype=torch.float64)
    on_fg, on_bg = weighted.to(pred.device)
    tp = fg - on_fg
    recall = 1 - on_fg / fg
    precision = tp / (tp + on_bg + EPS)
    q = (1 + beta) * recall * precision / (recall + beta * precision + EPS)
    return torch.where(fg > 0, q, 0.0)
