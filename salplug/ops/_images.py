"""Images between torch and the numpy world: contract tensors as H×W×C arrays, SLIC superpixels.

Classical steps (OpenCV, scikit-image, dense CRFs) take channel-last numpy arrays on the CPU;
converting in one place keeps every method's reading of a contract image the same.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def to_hwc(image: Tensor, dtype: torch.dtype = torch.float32) -> np.ndarray:
    """B×C×H×W tensor as a contiguous B×H×W×C numpy array of `dtype` on the CPU, clamped to [0, 1]."""
    array = image.detach().to("cpu", dtype).clamp(0.0, 1.0).permute(0, 2, 3, 1)
    return np.ascontiguousarray(array.numpy())


def superpixels(image: np.ndarray, n_segments: int, compactness: float) -> np.ndarray:
    """SLIC labels 0..n-1, consecutive, of an H×W×3 RGB image in [0, 1] (clustered in CIE-Lab, SLIC's default).

    SLIC may skip label values; renumbering them makes the labels direct indices of
    per-superpixel arrays (``np.bincount``).
    """
    from skimage.segmentation import slic  # imported on first use: scikit-image is slow to import

    labels = slic(image, n_segments=n_segments, compactness=compactness, start_label=0, channel_axis=-1)
    return np.unique(labels, return_inverse=True)[1].reshape(labels.shape)
