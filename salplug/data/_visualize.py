"""Contact sheets: photos beside each step's map, one row per image, for a person to look at."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np


def _tile(array: np.ndarray, height: int) -> np.ndarray:
    rgb = np.repeat(array[:, :, None], 3, axis=2) if array.ndim == 2 else array
    if rgb.dtype != np.uint8:
        rgb = np.round(np.clip(rgb, 0, 1) * 255).astype(np.uint8)
    width = max(1, round(rgb.shape[1] * height / rgb.shape[0]))
    return cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA)


def contact_sheet(
    rows: Sequence[Sequence[np.ndarray]], labels: Sequence[str], *, height: int = 160, gap: int = 6
) -> np.ndarray:
    """An RGB uint8 image: a header of column labels, then each row's tiles side by side.

    Tiles are RGB (``H×W×3``) or gray (``H×W``) arrays, uint8 or float in [0, 1].
    """
    if any(len(row) != len(labels) for row in rows):
        raise ValueError(f"contact_sheet: expected {len(labels)} tiles per row to match the labels")
    strips = []
    widths: list[int] = [0] * len(labels)
    tiled = [[_tile(a, height) for a in row] for row in rows]
    for row in tiled:
        widths = [max(w, t.shape[1]) for w, t in zip(widths, row)]
    header = np.full((28, sum(widths) + gap * (len(widths) + 1), 3), 255, np.uint8)
    x = gap
    for label, width in zip(labels, widths):
        cv2.putText(header, label, (x, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
        x += width + gap
    strips.append(header)
    for row in tiled:
        strip = np.full((height + gap, header.shape[1], 3), 255, np.uint8)
        x = gap
        for tile, width in zip(row, widths):
            strip[:height, x : x + tile.shape[1]] = tile
            x += width + gap
        strips.append(strip)
    return np.concatenate(strips, axis=0)
