"""Rebuild tests/data: four photos of scikit-image's bundled samples, their masks and two priors.

    .venv/bin/python tests/data/generate.py

The files it writes are committed; the tests read them and never run this script. Run it
again only to change the set (and update the figures the tests pin).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import skimage.data

HERE = Path(__file__).resolve().parent

# name: (crop of the original as (top, bottom, left, right), size as (height, width),
#        GrabCut rectangle around the object in the crop as (x, y, w, h), a rectangle surely
#        inside it or None, file suffix)
PHOTOS = {
    "astronaut": ((0, 512, 64, 405), (96, 64), (20, 20, 320, 492), (110, 280, 130, 200), ".png"),
    "chelsea": ((0, 300, 0, 451), (64, 96), (60, 0, 330, 300), (170, 90, 130, 160), ".jpg"),
    "coffee": ((0, 400, 0, 600), (64, 96), (90, 20, 420, 300), None, ".png"),
    "rocket": ((0, 427, 0, 640), (64, 96), (270, 10, 120, 410), None, ".png"),
}


def object_mask(photo: np.ndarray, rect: tuple[int, int, int, int], sure: tuple[int, int, int, int] | None) -> np.ndarray:
    """A binary mask of the object in `rect`, by GrabCut (OpenCV's seeded, so fixed)."""
    cv2.setRNGSeed(0)
    labels = np.full(photo.shape[:2], cv2.GC_BGD, np.uint8)
    x, y, w, h = rect
    labels[y : y + h, x : x + w] = cv2.GC_PR_FGD
    if sure is not None:
        x, y, w, h = sure
        labels[y : y + h, x : x + w] = cv2.GC_FGD
    bgd, fgd = np.zeros((1, 65)), np.zeros((1, 65))
    cv2.grabCut(cv2.cvtColor(photo, cv2.COLOR_RGB2BGR), labels, None, bgd, fgd, 8, cv2.GC_INIT_WITH_MASK)
    mask = np.isin(labels, (cv2.GC_FGD, cv2.GC_PR_FGD)).astype(np.uint8)
    count, parts, stats, _ = cv2.connectedComponentsWithStats(mask)
    if count > 1:  # keep the largest object, fill its holes
        mask = (parts == 1 + np.argmax(stats[1:, cv2.CC_STAT_AREA])).astype(np.uint8)
    return mask * 255


def good_prior(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A strong detector's map: the mask shifted a little, blurred, with low noise."""
    shifted = np.roll(mask, (1, -2), axis=(0, 1)).astype(np.float32)
    soft = cv2.GaussianBlur(shifted, (0, 0), 2.5) * 0.85 + rng.normal(0, 12, mask.shape)
    return np.clip(soft, 0, 255).round().astype(np.uint8)


def contrast_prior(photo: np.ndarray) -> np.ndarray:
    """A classical map: frequency-tuned colour contrast (Achanta et al., 2009) in Lab."""
    lab = cv2.cvtColor(cv2.GaussianBlur(photo, (5, 5), 0), cv2.COLOR_RGB2LAB).astype(np.float32)
    distance = np.linalg.norm(lab - lab.reshape(-1, 3).mean(0), axis=2)
    return np.round(255 * distance / distance.max()).astype(np.uint8)


def main() -> None:
    rng = np.random.default_rng(0)
    for name, ((top, bottom, left, right), (h, w), rect, sure, suffix) in PHOTOS.items():
        full = getattr(skimage.data, name)()[top:bottom, left:right, :3]
        mask_full = object_mask(np.ascontiguousarray(full), rect, sure)
        photo = cv2.resize(full, (w, h), interpolation=cv2.INTER_AREA)
        mask = np.where(cv2.resize(mask_full, (w, h), interpolation=cv2.INTER_AREA) > 128, 255, 0).astype(np.uint8)
        outputs = {
            f"images/{name}{suffix}": cv2.cvtColor(photo, cv2.COLOR_RGB2BGR),
            f"masks/{name}.png": mask,
            f"priors/good/{name}.png": good_prior(mask, rng),
            f"priors/contrast/{name}.png": contrast_prior(photo),
        }
        for relative, array in outputs.items():
            path = HERE / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            params = [cv2.IMWRITE_JPEG_QUALITY, 90] if suffix == ".jpg" and relative.startswith("images/") else []
            if not cv2.imwrite(str(path), array, params):
                raise OSError(f"could not write {path}")


if __name__ == "__main__":
    main()
