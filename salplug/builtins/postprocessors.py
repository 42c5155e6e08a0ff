"""Fixed clean-up steps that every chain can use: normalisation, median and guided filters, binarisation."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field, field_validator
from torch import Tensor

from salplug.components._base import ComponentConfig, PostProcessor


class Normalize(PostProcessor):
    """Min-max stretch of each map to [0, 1]; constant maps are left as they are."""

    name = "normalize"

    class Config(ComponentConfig):
        eps: float = Field(default=1e-8, ge=0, description="Value ranges at or below this count as constant.")

    def forward(self, image: Tensor, saliency: Tensor) -> Tensor:
        flat = saliency.flatten(1)
        lo = flat.amin(dim=1).view(-1, 1, 1, 1)
        span = flat.amax(dim=1).view(-1, 1, 1, 1) - lo
        constant = span <= self.config.eps
        return torch.where(constant, saliency, (saliency - lo) / torch.where(constant, 1.0, span))


class Median(PostProcessor):
    """Median filter with replicated borders; removes speckle without blurring edges."""

    name = "median"

    class Config(ComponentConfig):
        size: int = Field(default=5, ge=3, description="Odd window side in pixels.")
        max_elements: int = Field(default=2**25, ge=1, description="Working-set cap (windows × pixels) per chunk.")

        @field_validator("size")
        @classmethod
        def _odd(cls, size: int) -> int:
            if size % 2 == 0:
                raise ValueError(f"expected an odd window size, got {size}")
            return size

    def forward(self, image: Tensor, saliency: Tensor) -> Tensor:
        """Windows of up to `max_elements` values at a time: several images, or bands of rows of a large one."""
        k = self.config.size
        batch, _, height, width = saliency.shape
        per_row = k * k * width
        padded = F.pad(saliency, (k // 2,) * 4, mode="replicate")
        if per_row * height <= self.config.max_elements:
            step = max(1, self.config.max_elements // (per_row * height))
            out = [
                F.unfold(padded[s : s + step], k).median(dim=1).values.view(-1, 1, height, width)
                for s in range(0, batch, step)
            ]
            return out[0] if len(out) == 1 else torch.cat(out)
        rows = max(1, self.config.max_elements // per_row)
        result = torch.empty_like(saliency)
        for b in range(batch):
            for top in range(0, height, rows):
                band = min(rows, height - top)
                window = padded[b : b + 1, :, top : top + band + k - 1]
                result[b, :, top : top + band] = F.unfold(window, k).median(dim=1).values.view(1, band, width)
        return result


def _box(x: Tensor, radius: int) -> Tensor:
    """Mean over the (2r+1)² window clipped to the image (He et al.'s N-normalised box), separably."""
    k = 2 * radius + 1
    x = F.avg_pool2d(x, (k, 1), stride=1, padding=(radius, 0), count_include_pad=False)
    return F.avg_pool2d(x, (1, k), stride=1, padding=(0, radius), count_include_pad=False)


def _solve_color(guide: Tensor, mean_i: Tensor, cov_ip: Tensor, radius: int, eps: float) -> Tensor:
    """Per-pixel (Σ + eps·I) a = cov(I, p) for the 3×3 colour covariance Σ, by its adjugate.

    Σ is symmetric, so six window means give it; the closed-form inverse in float64 is
    exact enough for eps down to 1e-6 and avoids a batched solver's per-matrix overhead.
    """
    pairs = [(0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2)]
    products = torch.cat([guide[:, i : i + 1] * guide[:, j : j + 1] for i, j in pairs], 1)
    means = _box(products, radius).double()
    mi = mean_i.double()
    s00, s01, s02, s11, s12, s22 = (
        means[:, k] - mi[:, i] * mi[:, j] + (eps if i == j else 0.0) for k, (i, j) in enumerate(pairs)
    )
    c00, c01, c02 = s11 * s22 - s12 * s12, s02 * s12 - s01 * s22, s01 * s12 - s02 * s11
    c11, c12, c22 = s00 * s22 - s02 * s02, s01 * s02 - s00 * s12, s00 * s11 - s01 * s01
    det = s00 * c00 + s01 * c01 + s02 * c02
    v0, v1, v2 = cov_ip.double().unbind(1)
    a = torch.stack(
        [c00 * v0 + c01 * v1 + c02 * v2, c01 * v0 + c11 * v1 + c12 * v2, c02 * v0 + c12 * v1 + c22 * v2], 1
    )
    return (a / det.unsqueeze(1)).float()


class GuidedFilter(PostProcessor):
    """Guided filter (He et al., 2010): smooths the map but keeps the image's edges.

    Defaults from a sweep on sod-dev's dss and amulet priors (README, post-processors):
    radius 4 with eps 1e-4 and the colour guide kept the published maps' sharp edges and
    raised the S-measure of both, where radius 8 / eps 1e-3 / gray over-smoothed them.
    guide='gray' (the luma image) is about 4× faster.
    """

    name = "guided"

    class Config(ComponentConfig):
        radius: int = Field(default=4, ge=1, description="Window half-side in pixels.")
        eps: float = Field(default=1e-4, gt=0, description="Regulariser: guide variance below it is smoothed away.")
        guide: Literal["gray", "color"] = Field(default="color", description="Guide image: luma or RGB.")

    def forward(self, image: Tensor, saliency: Tensor) -> Tensor:
        r, eps = self.config.radius, self.config.eps
        p = saliency.float()
        guide = image.float()
        if self.config.guide == "gray":
            guide = (guide * guide.new_tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
        mean_i, mean_p = _box(guide, r), _box(p, r)
        cov_ip = _box(guide * p, r) - mean_i * mean_p
        if self.config.guide == "gray":
            a = cov_ip / (_box(guide * guide, r) - mean_i * mean_i + eps)
        else:
            a = _solve_color(guide, mean_i, cov_ip, r, eps)
        b = mean_p - (a * mean_i).sum(1, keepdim=True)
        q = (_box(a, r) * guide).sum(1, keepdim=True) + _box(b, r)
        return q.clamp(0, 1).to(saliency.dtype)


def otsu_levels(saliency: Tensor) -> Tensor:
    """Per-map Otsu threshold on the 0-255 quantised map, as cv2.threshold(THRESH_OTSU) picks it; B long."""
    levels = (saliency.flatten(1).clamp(0, 1) * 255).round().long()
    hist = torch.zeros(levels.shape[0], 256, device=levels.device, dtype=torch.float64)
    hist.scatter_add_(1, levels, torch.ones_like(levels, dtype=torch.float64))
    prob = hist / levels.shape[1]
    omega = prob.cumsum(1)
    mu = (prob * torch.arange(256, device=prob.device, dtype=prob.dtype)).cumsum(1)
    mu_t = mu[:, -1:]
    valid = (omega > 1.2e-7) & (omega < 1 - 1.2e-7)
    between = (mu_t * omega - mu) ** 2 / (omega * (1 - omega)).clamp_min(1e-12)
    return torch.where(valid, between, -1.0).argmax(1)


class Binarize(PostProcessor):
    """Hard 0/1 map: fixed threshold, adaptive 2×mean (the SOD adaptive-F rule) or Otsu per map."""

    name = "binarize"

    class Config(ComponentConfig):
        method: Literal["fixed", "adaptive", "otsu"] = Field(
            default="adaptive", description="How to pick the threshold."
        )
        threshold: float = Field(default=0.5, ge=0, le=1, description="Threshold for method='fixed' (map >= it is 1).")

    def forward(self, image: Tensor, saliency: Tensor) -> Tensor:
        method = self.config.method
        if method == "otsu":
            level = otsu_levels(saliency).view(-1, 1, 1, 1)
            return ((saliency.clamp(0, 1) * 255).round() > level).to(saliency.dtype)
        if method == "adaptive":
            threshold = (2 * saliency.flatten(1).mean(1)).clamp(max=1).view(-1, 1, 1, 1)
        else:
            threshold = self.config.threshold
        return (saliency >= threshold).to(saliency.dtype)
