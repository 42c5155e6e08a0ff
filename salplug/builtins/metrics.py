"""Mean absolute error, the metric every SOD table reports first."""

from __future__ import annotations

import torch
from torch import Tensor

from salplug.components import ComponentConfig, Metric
from salplug.contracts import check_map, check_mask


class MAE(Metric):
    """Mean absolute error between map and binary mask, averaged over images."""

    name = "mae"

    class Config(ComponentConfig):
        pass

    def __init__(self, config=None, **options):
        super().__init__(config, **options)
        self.scores: list[Tensor] = []

    def update(self, saliency: Tensor, mask: Tensor) -> dict[str, Tensor]:
        check_map(saliency, values=False)
        check_mask(mask, like=saliency)
        per_image = (saliency.float() - mask.float()).abs().flatten(1).mean(dim=1)
        self.scores.append(per_image.detach().cpu())
        return {"mae": per_image}

    def compute(self) -> dict[str, float]:
        if not self.scores:
            return {"mae": float("nan")}
        return {"mae": float(torch.cat(self.scores).double().mean())}

    def reset(self) -> None:
        self.scores.clear()
