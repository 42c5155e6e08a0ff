"""Contrast sharpening: a complete salplug plugin in a few lines."""

import torch
from pydantic import Field

import salplug


class Sharpen(salplug.Refiner):
    """Contrast sharpening s^g / (s^g + (1-s)^g): pushes values away from 0.5, keeps 0.5 in place."""

    name = "sharpen"

    class Config(salplug.ComponentConfig):
        gamma: float = Field(default=2.0, gt=0, description="Above 1 sharpens, below 1 softens, 1 keeps the map.")

    def forward(self, image, saliency):
        # The same ratio written as sigmoid(g * logit(s)): no 0/0 when both powers underflow.
        return torch.sigmoid(self.config.gamma * torch.logit(saliency))


@salplug.hookimpl
def salplug_register_refiners(register):
    register(Sharpen)
