"""What a map's batch may change: batched convolutions pick kernels by batch size, so a photo run alone
and the same photo in a batch of 8 give maps equal within one grey level (not always the same bytes)."""

from __future__ import annotations

import cv2
import numpy as np

from salplug import Chain
from salplug.data._io import write_png
from salplug.pipeline._runner import run_chain_on_files
from shared_data import TESTS_DATA

BASELINE = {"steps": [{"kind": "prior", "component": "baseline"}]}


def eight_photos(folder):
    """The three 64×96 photos of tests/data and their mirror images, eight photos of one size."""
    photos = [cv2.cvtColor(cv2.imread(str(TESTS_DATA / "images" / name)), cv2.COLOR_BGR2RGB)
              for name in ("chelsea.jpg", "coffee.png", "rocket.png")]
    variants = [*photos, *(p[:, ::-1] for p in photos), photos[0][::-1], photos[1][::-1, ::-1]]
    for i, photo in enumerate(variants):
        write_png(folder / f"{i}.png", np.ascontiguousarray(photo))
    return folder


def test_a_photo_alone_and_in_a_batch_of_eight_gives_maps_within_one_grey_level(tmp_path):
    photos = eight_photos(tmp_path / "photos")
    chain = Chain.from_spec(BASELINE)
    alone = run_chain_on_files(chain, [photos], tmp_path / "alone", batch_size=1, progress=False)
    batched = run_chain_on_files(chain, [photos], tmp_path / "batched", batch_size=8, progress=False)
    assert len(alone.written) == len(batched.written) == 8
    for path in sorted((tmp_path / "alone").glob("*.png")):
        a = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE).astype(int)
        b = cv2.imread(str(tmp_path / "batched" / path.name), cv2.IMREAD_GRAYSCALE).astype(int)
        assert a.shape == b.shape == (64, 96), path.name
        assert np.abs(a - b).max() <= 1, path.name
