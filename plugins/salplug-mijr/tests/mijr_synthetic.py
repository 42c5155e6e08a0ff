"""Small synthetic scenes for the MIJR tests: a coloured ellipse (the salient object) on a textured ground."""

from __future__ import annotations

import cv2
import numpy as np
from salplug_mijr import PoolImage


def scene(seed: int, height: int = 96, width: int = 96) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(RGB image in [0, 1], noisy base map, true mask) of one random scene."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:height, :width]
    cy, cx = rng.uniform(0.3, 0.7) * height, rng.uniform(0.3, 0.7) * width
    ry, rx = rng.uniform(0.15, 0.3) * height, rng.uniform(0.15, 0.3) * width
    mask = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
    texture = cv2.GaussianBlur(rng.standard_normal((height, width, 3)).astype(np.float32), (0, 0), 2.0)
    ground = rng.uniform(0.2, 0.5, 3) + 0.1 * texture
    image = np.where(mask[..., None], rng.uniform(0.6, 1.0, 3), ground)
    base = np.clip(0.15 + 0.7 * mask + 0.15 * rng.standard_normal((height, width)), 0, 1)
    return np.clip(image, 0, 1).astype(np.float32), base.astype(np.float32), mask


def pool(count: int, labelled: int) -> list[PoolImage]:
    """`count` pool images, the first `labelled` with masks."""
    out = []
    for i in range(count):
        image, base, mask = scene(i)
        out.append(PoolImage(f"s{i}", image, base, mask if i < labelled else None))
    return out
