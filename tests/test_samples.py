"""Sample photos: the embedded inputs of demos and benchmarks."""

from __future__ import annotations

import pytest
import torch

from salplug.data._samples import SAMPLES, sample_batch, sample_photo, sample_tensor


def test_every_sample_is_an_rgb_photo():
    for name in SAMPLES:
        photo = sample_photo(name)
        assert photo.dtype.name == "uint8" and photo.ndim == 3 and photo.shape[2] == 3 and photo.std() > 10


def test_tensors_follow_the_image_contract_and_resize():
    image = sample_tensor("coffee")
    assert image.shape == (1, 3, 400, 600) and image.dtype == torch.float32
    assert 0 <= image.min() < image.max() <= 1
    assert sample_tensor("coffee", (40, 60)).shape == (1, 3, 40, 60)


def test_batches_repeat_the_four_in_order():
    batch = sample_batch(32, 6)
    assert batch.shape == (6, 3, 32, 32)
    assert torch.equal(batch[4], batch[0]) and not torch.equal(batch[1], batch[0])


def test_unknown_name_lists_the_samples():
    with pytest.raises(ValueError, match="astronaut, coffee, chelsea, rocket; got 'lena'"):
        sample_photo("lena")
