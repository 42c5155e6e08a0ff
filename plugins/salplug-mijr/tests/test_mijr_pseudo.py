"""Stage 4: the bi-level CRF pseudo ground truth."""

import numpy as np
from salplug_mijr.pseudo import (
    AGGRESSIVE,
    BACKGROUND,
    CONSERVATIVE,
    FOREGROUND,
    IGNORED,
    bilevel,
    crf_labels,
    superpixel_labels,
)


def test_pseudo_gt_is_fg_on_the_object_bg_far_from_it_and_ignored_where_the_crfs_disagree():
    rgb = np.full((128, 128, 3), 90, np.uint8)
    rgb[32:96, 32:96] = (220, 40, 40)
    base = np.full((128, 128), 0.05, np.float32)
    base[32:96, 32:96] = 0.9
    base[20:32, 32:96] = 0.6  # the map spills over the object's top edge, where the image has no object
    out = bilevel(rgb, base)
    assert set(np.unique(out)) <= {FOREGROUND, BACKGROUND, IGNORED}
    assert (out[32:96, 32:96] == FOREGROUND).all() and (out[:16] == BACKGROUND).all()
    spill = out[20:32, 32:96]
    assert not (spill == FOREGROUND).any() and (spill == IGNORED).mean() > 0.1  # aggressive keeps some, conservative none
    a, c = crf_labels(rgb, base, AGGRESSIVE), crf_labels(rgb, base, CONSERVATIVE)
    assert np.array_equal(out == IGNORED, a != c)
    assert np.array_equal(out == FOREGROUND, a & c)


def test_superpixel_label_is_the_majority_class_of_its_pixels():
    labels = np.repeat(np.arange(3), 4).reshape(3, 4)
    pixel = np.array([[1, 1, 1, 0], [0, 0, 0, -1], [1, 0, -1, -1]], np.int8)
    assert superpixel_labels(pixel, labels, 3).tolist() == [FOREGROUND, BACKGROUND, IGNORED]
