"""The ``ldps`` refiner: a trained relation network (checkpoint mode) or one trained per image (online mode)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import Field, model_validator
from torch import Tensor

from salplug.components import SHIPPED, ComponentConfig, Learned, Refiner, seeded
from salplug.ops import merge, resize

from .model import LDPSNet
from .relations import match_confidence, pair_labels, pair_loss

SHIPPED_FILE = "ldps-mobilenetv2-256.pt"


class LDPS(Learned, Refiner):
    """LDPS (Chen et al., AAAI 2020): deep feature relations to the prior's foreground promote its map."""

    name = "ldps"
    example_config = {"checkpoint": None, "backbone_weights": None, "size": 32}
    shipped = SHIPPED_FILE
    # The fixed encoder part (stem, blocks 0-2) is always the weight tag's ImageNet weights:
    # checkpoints store the head and encoder blocks 3-6 only, in fp16.
    checkpoint_skip = ("net.encoder.fixed.",)
    checkpoint_dtype = torch.float16

    class Config(ComponentConfig):
        mode: Literal["checkpoint", "online"] = Field(
            default="checkpoint",
            description="checkpoint: the trained network; online: a fresh network trained on each image alone.")
        checkpoint: str | None = Field(
            default=SHIPPED, description="Checkpoint file for checkpoint mode; 'shipped' is the one installed with the "
            "package; None leaves the head untrained (for training and tests).")
        backbone_weights: str | None = Field(
            default="imagenet", description="Weight tag of the MobileNetV2 encoder (None: random init, for fast tests).")
        size: int = Field(
            default=256, ge=32, description="Working size: image and prior are resized to size×size; the score is resized back.")
        theta_fg: float = Field(
            default=0.9, gt=0, le=1,
            description="Prior pixels at or above this form the foreground anchor, weighted by their prior.")
        theta_afg: float = Field(
            default=0.8, gt=0, le=1,
            description="Online mode: pixels whose prior is at or above this are positive pairs of the training loss.")
        theta_abg: float = Field(
            default=0.3, ge=0, lt=1,
            description="Online mode: pixels whose prior is at or below this are negative pairs; those between are left out.")
        topk: float = Field(
            default=0.05, gt=0, le=1,
            description="Anchor fallback: with no prior pixel >= theta_fg, the top topk fraction of pixels by prior.")
        merge: bool = Field(
            default=True,
            description="Keep the prior where it is more confident than the new score (|x - 0.5|); False: score only.")
        merge_tolerance: float = Field(
            default=0.0, ge=0, le=0.5, description="The score also wins where its confidence is within this much of the "
            "prior's (0: the paper's rule; see the README's duts-side table for saturated, 8-bit priors).")
        match_confidence: bool | None = Field(
            default=None, description="Before the merge, scale the score's logits per image so its mean confidence "
            "equals the prior's (no labels used); False: the sigmoid as it comes. None: on in checkpoint mode, off in "
            "online mode (where it was measured not to help, see the README).")
        online_steps: int = Field(
            default=10, ge=0, description="Online mode: SGD steps on each image's own pairs before it is scored.")
        online_lr: float = Field(
            default=0.2, gt=0,
            description="Head learning rate in online mode; the tuned encoder blocks get a tenth of it.")
        online_encoder: bool = Field(
            default=True, description="Online mode also fine-tunes encoder blocks 3-6 (False: head only).")
        seed: int = Field(
            default=0, description="Seed of the online head's initialisation: every image starts from the same network.")

        @model_validator(mode="after")
        def _ordered(self):
            if not self.theta_abg < self.theta_afg <= self.theta_fg:
                raise ValueError(
                    f"expected theta_abg < theta_afg <= theta_fg, got {self.theta_abg}, {self.theta_afg}, {self.theta_fg}"
                )
            return self

    def checkpoint_path(self) -> Path | None:
        """Online mode trains its own network per image: no checkpoint to load."""
        return super().checkpoint_path() if self.config.mode == "checkpoint" else None

    def build(self, arch: dict[str, Any]) -> None:
        with seeded(self.config.seed):
            self.net = LDPSNet(self.config.backbone_weights)

    @property
    def untrained(self) -> bool:
        """Only checkpoint mode runs learned weights; online mode trains its own per image."""
        return self.config.mode == "checkpoint" and self.weights_from is None

    @property
    def _matched(self) -> bool:
        """Whether scores are confidence-matched: the config's choice, else on in checkpoint mode only."""
        cfg = self.config
        return cfg.match_confidence if cfg.match_confidence is not None else cfg.mode == "checkpoint"

    # -- inference -----------------------------------------------------------------------------------
    def score(self, image: Tensor, prior: Tensor) -> Tensor:
        """Relation scores in [0, 1] at the working size for a batch (checkpoint mode's network)."""
        cfg = self.config
        return self._scores(self.net(image, prior, cfg.theta_fg, cfg.topk), prior)

    def _scores(self, logits: Tensor, prior: Tensor) -> Tensor:
        if self._matched:
            return match_confidence(logits, prior)
        return torch.sigmoid(logits)

    def _online(self, image: Tensor, prior: Tensor) -> Tensor:
        """Train a copy of the initial network on this one image for `online_steps`, then score it."""
        cfg = self.config
        with torch.inference_mode(False), torch.enable_grad():
            image, prior = image.clone(), prior.clone()
            net = copy.deepcopy(self.net)
            net.train()
            tuned, head = net.trainable()
            groups = [{"params": head, "lr": cfg.online_lr}]
            if cfg.online_encoder:
                groups.append({"params": tuned, "lr": cfg.online_lr / 10})
            else:
                for p in tuned:
                    p.requires_grad_(False)
            optim = torch.optim.SGD(groups, momentum=0.9, weight_decay=5e-4)
            labels, valid = pair_labels(prior, cfg.theta_afg, cfg.theta_abg)
            with torch.no_grad():
                low = net.encoder.low(image)
            for _ in range(cfg.online_steps):
                logits = net(image, prior, cfg.theta_fg, cfg.topk, low=low)
                loss = pair_loss(logits, labels, valid)
                optim.zero_grad(set_to_none=True)
                loss.backward()
                optim.step()
            with torch.no_grad():
                # batch statistics of this image, as in its training steps
                return self._scores(net(image, prior, cfg.theta_fg, cfg.topk, low=low), prior).detach()

    def forward(self, image: Tensor, saliency: Tensor) -> Tensor:
        cfg = self.config
        height, width = image.shape[-2:]
        small = resize(image, cfg.size).clamp(0, 1)
        prior = resize(saliency, cfg.size).clamp(0, 1)
        if cfg.mode == "online":
            score = torch.cat([self._online(small[i : i + 1], prior[i : i + 1]) for i in range(image.shape[0])])
        else:
            score = self.score(small, prior)
        score = resize(score, (height, width)).clamp(0, 1)
        out = merge(saliency, score, cfg.merge_tolerance) if cfg.merge else score
        return torch.nan_to_num(out.float(), nan=0.0).clamp(0, 1)
