"""Stage 6: joint re-learning — M binary saliency classifiers and a joint one, boosted by their errors.

Classifier m learns saliency from the target's confident superpixels and the superpixels of
retrieved image m that the filter kept; the joint classifier (Eq. 6) learns from all of them
at once. Each is weighed by α = ½·log((1 − e)/e) (Eq. 7), e its weighted error on the
target's own pseudo ground truth, and the re-learned score is the α-weighted mean (Eq. 8).
A classifier no better than chance (e ≥ ½) gets α = 0.

The paper leaves open whether the target's pseudo-labelled superpixels enter each fit; with
`with_target=False` classifier m learns from retrieved image m's kept instances alone (the joint
one from all of them) and the target's pseudo labels only weigh them (Eq. 7).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

EPS = 1e-3


def alpha(error: Tensor | float) -> Tensor:
    """Eq. 7: ½·log((1 − e)/e), with e clipped to [EPS, ½] so a perfect classifier stays finite and a bad one gets 0."""
    e = torch.as_tensor(error, dtype=torch.float64).clamp(EPS, 0.5)
    return 0.5 * torch.log((1 - e) / e)


def fit_logistic(x: Tensor, y: Tensor, w: Tensor, l2: float = 1.0, iterations: int = 50) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """L2-regularised weighted logistic regression (L-BFGS) on standardised features: (coef, bias, mean, std).

    Chains and eval run under inference mode; the fit leaves it (clones are ordinary tensors autograd can save).
    """
    with torch.inference_mode(False), torch.enable_grad():
        x, y, w = x.clone(), y.clone(), w.clone() / w.sum()
        mean, std = x.mean(0), x.std(0).clamp_min(1e-6)
        z = (x - mean) / std
        coef = torch.zeros(x.shape[1], dtype=x.dtype, requires_grad=True)
        bias = torch.zeros((), dtype=x.dtype, requires_grad=True)
        optim = torch.optim.LBFGS([coef, bias], max_iter=iterations, line_search_fn="strong_wolfe")

        def closure():
            optim.zero_grad()
            logits = z @ coef + bias
            loss = (torch.nn.functional.binary_cross_entropy_with_logits(logits, y, reduction="none") * w).sum()
            loss = loss + l2 * (coef**2).sum() / (2 * len(x))
            loss.backward()
            return loss

        optim.step(closure)
    return coef.detach(), bias.detach(), mean, std


def predict(model: tuple[Tensor, Tensor, Tensor, Tensor], x: Tensor) -> Tensor:
    coef, bias, mean, std = model
    return torch.sigmoid(((x - mean) / std) @ coef + bias)


def balanced(y: Tensor, w: Tensor) -> Tensor:
    """Weights that give both classes the same total."""
    pos = (w * y).sum().clamp_min(1e-9)
    neg = (w * (1 - y)).sum().clamp_min(1e-9)
    return torch.where(y > 0.5, w / pos, w / neg) * 0.5 * w.sum()


def relearn(target: Tensor, confident: Tensor, target_label: Tensor, target_weight: Tensor,
            aligned: Sequence[tuple[Tensor, Tensor, Tensor]], l2: float = 1.0,
            with_target: bool = True) -> tuple[Tensor, Tensor]:
    """Re-learned saliency of every target instance, and the α of each classifier (M, then joint).

    target: n×F features of all target instances; confident: mask of those with a pseudo label
    (target_label 0/1, target_weight their areas); aligned: per retrieved image (x, label, weight)
    of its kept instances. Without confident target instances of both classes nothing can be
    checked, and the result is NaN (the caller keeps the base map). Without the target in the
    fits, a retrieved set of one class learns nothing (α = 0), and the result is NaN when no
    classifier beats chance on the target.
    """
    nan = torch.full((len(target),), float("nan"), dtype=target.dtype), torch.zeros(0, dtype=torch.float64)
    xt, yt, wt = target[confident], target_label[confident], target_weight[confident]
    if len(yt) == 0 or yt.min() == yt.max():
        return nan
    joint = (torch.cat([a[0] for a in aligned]), torch.cat([a[1] for a in aligned]), torch.cat([a[2] for a in aligned])) \
        if aligned else (xt[:0], yt[:0], wt[:0])
    scores, alphas = [], []
    for x, y, w in [*aligned, joint]:
        if with_target:
            xs, ys, ws = torch.cat([xt, x]), torch.cat([yt, y]), torch.cat([wt, w])
        elif len(y) and y.min() != y.max():
            xs, ys, ws = x, y, w
        else:
            alphas.append(alpha(0.5))
            scores.append(torch.zeros(len(target), dtype=target.dtype))
            continue
        model = fit_logistic(xs, ys, balanced(ys, ws), l2)
        wrong = (predict(model, xt) > 0.5).to(yt.dtype) != yt
        error = (balanced(yt, wt) * wrong).sum() / balanced(yt, wt).sum()
        alphas.append(alpha(error))
        scores.append(predict(model, target))
    a = torch.stack(alphas)
    if a.sum() <= 0:
        if not with_target:
            return nan
        a = torch.ones_like(a)
    combined = (torch.stack(scores) * a[:, None].to(target.dtype)).sum(0) / a.sum().to(target.dtype)
    return combined, a


def spatial_weighting(score: np.ndarray, centroid: np.ndarray, lab: np.ndarray, sigma_xy: float,
                      sigma_lab: float) -> np.ndarray:
    """Each superpixel's score as the mean of all superpixels' scores, weighted by nearness in place and colour."""
    d_xy = ((centroid[:, None] - centroid[None]) ** 2).sum(-1)
    d_lab = ((lab[:, None] - lab[None]) ** 2).sum(-1)
    k = np.exp(-d_xy / (2 * sigma_xy**2) - d_lab / (2 * sigma_lab**2))
    return (k @ score) / k.sum(1)
