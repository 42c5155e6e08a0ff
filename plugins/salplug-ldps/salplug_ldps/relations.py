"""Pure tensor functions of LDPS: the foreground anchor, pair labels, the pair loss and confidence matching.

Everything here works on batches (``B×C×H×W`` features, ``B×1×H×W`` maps in [0, 1]) and
has no parameters, so it is tested on synthetic maps without any network.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def anchor_weights(prior: Tensor, theta_fg: float, topk: float) -> Tensor:
    """Per-pixel weights ``p_i`` of the foreground anchor, summing to 1 per image (``B×1×H×W``).

    Pixels with prior >= `theta_fg` take weights proportional to their prior. An image
    with no such pixel falls back to its top-`topk` fraction of pixels by prior (at least
    one pixel), weighted by prior plus a small floor so an all-zero map still gets a
    uniform anchor over its chosen pixels instead of 0/0.
    """
    b = prior.shape[0]
    flat = prior.reshape(b, -1).float()
    chosen = flat >= theta_fg
    empty = ~chosen.any(dim=1)
    if bool(empty.any()):
        k = max(1, int(round(topk * flat.shape[1])))
        kth = flat[empty].topk(k, dim=1).values[:, -1:]
        chosen[empty] = flat[empty] >= kth
    weights = torch.where(chosen, flat + 1e-6, torch.zeros_like(flat))
    weights = weights / weights.sum(dim=1, keepdim=True)
    return weights.reshape(prior.shape)


def foreground_anchor(features: Tensor, prior: Tensor, theta_fg: float = 0.9, topk: float = 0.05) -> Tensor:
    """``F_fg = sum_i p_i f_i``: the prior-weighted mean feature of the confident foreground (``B×C``).

    `features` must already have the prior's height and width.
    """
    if features.shape[-2:] != prior.shape[-2:]:
        raise ValueError(f"anchor: expected features of the prior's size {tuple(prior.shape[-2:])}, "
                         f"got {tuple(features.shape[-2:])}")
    weights = anchor_weights(prior, theta_fg, topk).to(features.dtype)
    return (features * weights).sum(dim=(2, 3))


def pair_labels(prior: Tensor, theta_afg: float = 0.8, theta_abg: float = 0.3) -> tuple[Tensor, Tensor]:
    """Labels (1 positive pair, 0 negative) and the valid mask of the pairs ``[F_fg, f_i]``.

    A pixel is a positive pair when its prior is >= `theta_afg`, a negative pair when it is
    <= `theta_abg`; pixels in between are left out of the loss.
    """
    positive = prior >= theta_afg
    negative = prior <= theta_abg
    return positive.to(prior.dtype), positive | negative


def pair_loss(logits: Tensor, labels: Tensor, valid: Tensor) -> Tensor:
    """Jensen-Shannon MI lower bound as a balanced BCE: mean over positives plus mean over negatives.

    Returns a 0-dim tensor; an empty side (no positive or no negative pair) contributes 0,
    and a batch with no valid pixel at all gives 0 with a gradient path. Taken in fp32 whatever
    the network's precision.
    """
    logits = logits.float()
    bce = F.binary_cross_entropy_with_logits(logits, labels.float(), reduction="none")
    positive = valid & (labels > 0.5)
    negative = valid & (labels <= 0.5)
    total = logits.sum() * 0.0
    for side in (positive, negative):
        count = side.sum()
        if int(count) > 0:
            total = total + 0.5 * (bce * side).sum() / count
    return total


def match_confidence(logits: Tensor, prior: Tensor, low: float = 1 / 16, high: float = 16.0,
                     steps: int = 30) -> Tensor:
    """Scores ``sigmoid(tau * logits)`` whose mean confidence ``|s - 0.5|`` equals the prior's, per image.

    The merge compares the two maps' confidences pixel by pixel, so both must be on one
    scale; the detector's scale is the prior's. The mean confidence grows monotonically
    with ``tau``, so a bisection in log space finds it per image (clamped to [low, high]).
    Uses no labels: only the prior and the logits of the same image.
    """
    b = logits.shape[0]
    flat = logits.detach().reshape(b, -1).float()
    target = (prior.reshape(b, -1).float() - 0.5).abs().mean(dim=1, keepdim=True)
    lo = torch.full_like(target, math.log(low))
    hi = torch.full_like(target, math.log(high))
    for _ in range(steps):
        mid = (lo + hi) / 2
        above = (torch.sigmoid(flat * mid.exp()) - 0.5).abs().mean(dim=1, keepdim=True) > target
        hi = torch.where(above, mid, hi)
        lo = torch.where(above, lo, mid)
    tau = ((lo + hi) / 2).exp()
    return torch.sigmoid(logits * tau.reshape(b, *([1] * (logits.dim() - 1))).to(logits.dtype))
