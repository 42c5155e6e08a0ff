"""Bookkeeping every epoch-based trainer repeats: its progress lines and the checkpoint rewritten each epoch.

Rewriting the checkpoint at every epoch end, with the figures so far in its card, means an
interrupted run still leaves a usable, documented file.
"""

from __future__ import annotations

import time
from typing import Any

import torch

from salplug.components._base import Component


def log(text: str) -> None:
    """A progress line, flushed at once so logs of long runs show where they are."""
    print(text, flush=True)


def end_epoch(
    name: str, model: Component, out: str, card: dict[str, Any], history: list[float], *,
    epoch: int, epochs: int, mean_loss: float, started: float, optim: torch.optim.Optimizer | None = None,
    sched: torch.optim.lr_scheduler.LRScheduler | None = None, **figures: Any,
) -> None:
    """Step the lr schedule (if any), log the epoch (with the lr when `optim` is given), rewrite the checkpoint."""
    if sched is not None:
        sched.step()
    history.append(round(mean_loss, 5))
    lr = f" lr {optim.param_groups[0]['lr']:g}" if optim is not None else ""
    log(f"{name}: epoch {epoch + 1}/{epochs} loss {history[-1]:.5f}{lr} {time.time() - started:.0f}s")
    model.eval()
    training = {"epochs_done": epoch + 1, "train_seconds": round(time.time() - started, 1), **figures,
                "loss_history": history}
    model.save_weights(out, {**card, "training": training})
    model.train()
