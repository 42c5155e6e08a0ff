"""The gdsal prior: an ImageNet classifier's input gradients, descended for T steps, as a saliency map.

Pan & Jiang, "A deep learning based fast image saliency detection algorithm" (2016): lower
the top class's logit while clamping every other logit to its starting value, so the
pixels the update removes are those that make the image look like its class.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from salplug.components import ComponentConfig, PriorProvider, classifier, load_matching, resolve
from salplug.ops import to_hwc

from .superpixels import refine


def objective(logits: Tensor, start: Tensor, label: Tensor, gamma: float) -> Tensor:
    """F(X|l) = a_l + γ Σ_{k≠l} (a_k − o_k)² per image: lower the class, keep the rest where they were."""
    others = torch.ones_like(logits).scatter_(1, label[:, None], 0.0)
    drift = (others * (logits - start) ** 2).sum(dim=1)
    return logits.gather(1, label[:, None])[:, 0] + gamma * drift


def descend(model: Callable[[Tensor], Tensor], x: Tensor, steps: int, step_size: float, gamma: float) -> Tensor:
    """X(T) after `steps` updates X ← X − ε·max(∂F/∂X, 0); one backward pass per step for the whole batch.

    Per-image objectives are summed: images do not interact, so each gets its own gradient.
    """
    start = label = None
    for _ in range(steps):
        x = x.detach().requires_grad_(True)
        logits = model(x)
        if start is None:
            start = logits.detach()
            label = start.argmax(dim=1)
        (grad,) = torch.autograd.grad(objective(logits, start, label, gamma).sum(), x)
        x = x.detach() - step_size * grad.clamp(min=0)
    return x.detach()


class _Normalised(nn.Module):
    """The classifier with its weight tag's normalisation, so it takes [0, 1] images."""

    def __init__(self, model: nn.Module, mean: Sequence[float], std: Sequence[float]):
        super().__init__()
        self.model = model
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.model((x - self.mean) / self.std)


class GradientDescentSaliency(PriorProvider):
    """Class-specific input gradient descent on an ImageNet classifier, refined by SLIC and Lab contrast."""

    name = "gdsal"
    example_config = {"steps": 2, "size": 64}

    class Config(ComponentConfig):
        arch: str = Field(default="mobilenetv2_100", description="timm ImageNet classifier architecture.")
        weights: str = Field(default="imagenet", description="Weight tag (see salplug.components._weight_tags).")
        weights_path: Path | None = Field(default=None, description="Explicit weights file, tried first.")
        size: int = Field(default=224, ge=32, description="Square working resolution of the classifier.")
        steps: int = Field(
            default=20, ge=1, description="Gradient-descent steps T (paper: 5-10; 20 measured better, see README)."
        )
        step_size: float = Field(default=1e-3, gt=0, description="Step size ε on the [0, 1] image.")
        gamma: float = Field(default=1.0, ge=0, description="Weight γ of the clamp on the other classes' logits.")
        raw_threshold: float = Field(
            default=0.1, ge=0, lt=1, description="Raw-map pruning: fraction of its max treated as noise."
        )
        n_segments: int | tuple[int, ...] = Field(
            default=(100, 200, 300),
            description="SLIC superpixels (approximate count); several counts average the smoothing over scales.",
        )
        compactness: float = Field(default=10.0, gt=0, description="SLIC compactness (colour vs. space).")
        alpha: float = Field(
            default=0.5, gt=0, lt=1, description="Colour contrast is mapped to [alpha, 1 + alpha] before weighting."
        )
        final_threshold: float = Field(
            default=0.2, ge=0, lt=1, description="Final pruning: fraction of the refined map's max set to zero."
        )

    def __init__(self, config=None, **options):
        super().__init__(config, **options)
        cfg = self.config
        # Resolved now, so a missing or unusable weights file fails the build and the run records it.
        self._weights = resolve(cfg.arch, cfg.weights, cfg.weights_path)
        self.classifier: _Normalised | None = None

    def _build(self, device: torch.device) -> _Normalised:
        """Load the classifier once, frozen: only the input gets gradients."""
        cfg = self.config
        resolved = self._weights
        model = classifier(cfg.arch).eval()
        load_matching(model, resolved)
        model.requires_grad_(False)
        self.classifier = _Normalised(model, resolved.mean, resolved.std).to(device)
        return self.classifier

    def raw_maps(self, image: Tensor) -> Tensor:
        """X(0) − X(T) averaged over RGB at the working size, resized back: B×H×W, non-negative."""
        cfg = self.config
        height, width = image.shape[-2:]
        # Chains and eval run under inference_mode; the descent needs autograd on the input.
        with torch.inference_mode(False), torch.enable_grad():
            model = self.classifier or self._build(image.device)
            model.eval()
            x0 = F.interpolate(image.clone(), size=(cfg.size, cfg.size), mode="bilinear", align_corners=False)
            xt = descend(model, x0, cfg.steps, cfg.step_size, cfg.gamma)
            raw = (x0 - xt).mean(dim=1, keepdim=True)
            raw = F.interpolate(raw, size=(height, width), mode="bilinear", align_corners=False)
        return raw[:, 0].clamp(min=0)

    def forward(self, image: Tensor, keys: Sequence[str] | None = None) -> Tensor:
        cfg = self.config
        raws = self.raw_maps(image).cpu().numpy()
        pictures = to_hwc(image, torch.float64)
        maps = [
            refine(
                picture,
                raw,
                n_segments=cfg.n_segments,
                compactness=cfg.compactness,
                alpha=cfg.alpha,
                raw_threshold=cfg.raw_threshold,
                final_threshold=cfg.final_threshold,
            )
            for picture, raw in zip(pictures, raws)
        ]
        return torch.from_numpy(np.stack(maps))[:, None].to(image.device)
