"""Reading every common image layout into the contract, and atomic map writes."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from salplug.errors import ImageReadError
from salplug.data._io import read_image, read_map, square_uint8, to_uint8, write_map

RGB = (200, 100, 50)


def _bgr(height: int = 5, width: int = 7) -> np.ndarray:
    image = np.zeros((height, width, 3), np.uint8)
    image[:] = RGB[::-1]
    return image


def test_read_image_8bit_rgb_comes_back_in_rgb_order(tmp_path):
    path = tmp_path / "photo.png"
    cv2.imwrite(str(path), _bgr())
    image = read_image(path)
    assert image.shape == (5, 7, 3)
    assert image.dtype == np.float32
    np.testing.assert_allclose(image[2, 3], np.array(RGB) / 255.0, atol=1e-6)


def test_read_image_replicates_grayscale(tmp_path):
    path = tmp_path / "gray.png"
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    cv2.imwrite(str(path), gray)
    image = read_image(path)
    assert image.shape == (3, 4, 3)
    for channel in range(3):
        np.testing.assert_allclose(image[:, :, channel], gray / 255.0, atol=1e-6)


def test_read_image_drops_alpha(tmp_path):
    path = tmp_path / "rgba.png"
    bgra = np.dstack([_bgr(), np.full((5, 7), 10, np.uint8)])
    cv2.imwrite(str(path), bgra)
    image = read_image(path)
    assert image.shape == (5, 7, 3)
    np.testing.assert_allclose(image[0, 0], np.array(RGB) / 255.0, atol=1e-6)


def test_read_image_scales_16bit_to_unit_range(tmp_path):
    path = tmp_path / "deep.png"
    deep = np.zeros((4, 4, 3), np.uint16)
    deep[0, 0] = (65535, 32768, 0)
    cv2.imwrite(str(path), deep)
    image = read_image(path)
    assert image.dtype == np.float32
    np.testing.assert_allclose(image[0, 0], [0.0, 32768 / 65535, 1.0], atol=1e-6)
    assert image.max() <= 1.0


def test_read_image_expands_palette(tmp_path):
    path = tmp_path / "palette.png"
    indexed = Image.new("P", (3, 2))
    indexed.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * 759)
    indexed.putpixel((1, 0), 1)
    indexed.putpixel((2, 0), 2)
    indexed.save(path)
    image = read_image(path)
    assert image.shape == (2, 3, 3)
    np.testing.assert_array_equal(image[0], [[1, 0, 0], [0, 1, 0], [0, 0, 1]])


def test_read_map_gray(tmp_path):
    path = tmp_path / "map.png"
    gray = np.array([[0, 128, 255]], np.uint8)
    cv2.imwrite(str(path), gray)
    saliency = read_map(path)
    assert saliency.shape == (1, 3)
    np.testing.assert_allclose(saliency, gray / 255.0, atol=1e-6)


def test_read_map_converts_colour_to_gray(tmp_path):
    path = tmp_path / "map.png"
    colour = np.zeros((2, 2, 3), np.uint8)
    colour[0, 0] = 255
    cv2.imwrite(str(path), colour)
    saliency = read_map(path)
    assert saliency.shape == (2, 2)
    assert saliency[0, 0] == pytest.approx(1.0)
    assert saliency[1, 1] == 0.0


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda p: None, "no such file"),
        (lambda p: p.write_bytes(b""), "empty"),
        (lambda p: p.write_text("just some text, not a JPEG"), "not a decodable image"),
        (lambda p: p.mkdir(), "directory"),
    ],
    ids=["missing", "empty", "text", "directory"],
)
@pytest.mark.parametrize("reader", [read_image, read_map])
def test_read_errors_name_file_and_reason(tmp_path, make, reason, reader):
    path = tmp_path / "broken.jpg"
    make(path)
    with pytest.raises(ImageReadError) as caught:
        reader(path)
    assert caught.value.path == str(path)
    assert reason in caught.value.reason
    assert str(path) in str(caught.value) and reason in str(caught.value)


def test_write_map_round_trip_leaves_no_temp_file(tmp_path):
    saliency = torch.linspace(0, 1, 12).view(1, 1, 3, 4)
    path = write_map(tmp_path / "nested" / "out.png", saliency)
    assert sorted(p.name for p in path.parent.iterdir()) == ["out.png"]
    back = read_map(path)
    np.testing.assert_allclose(back, saliency[0, 0].numpy(), atol=0.5 / 255 + 1e-6)


def test_write_map_clips_out_of_range_values(tmp_path):
    path = write_map(tmp_path / "clip.png", np.array([[-0.5, 1.5], [0.0, 1.0]]))
    np.testing.assert_array_equal(cv2.imread(str(path), cv2.IMREAD_UNCHANGED), [[0, 255], [0, 255]])


def test_to_uint8_keeps_one_pixel_high_maps():
    assert to_uint8(torch.ones(1, 1, 1, 5)).shape == (1, 5)


@pytest.mark.parametrize("shape", [(2, 1, 3, 4), (3, 4, 5), (7,)])
def test_to_uint8_rejects_anything_but_one_map(shape):
    with pytest.raises(ValueError, match="expected one H×W map"):
        to_uint8(torch.zeros(shape))


def test_square_uint8_keeps_channels_first_and_averages_when_shrinking():
    checker = (np.indices((8, 12)).sum(axis=0) % 2).astype(np.float32)  # 0/1 pixels alternating
    small = square_uint8(checker, 4)
    assert small.dtype == torch.uint8 and small.shape == (1, 4, 4)
    assert torch.all((small - 128).abs() <= 1)  # area interpolation averages the pattern
    image = np.stack([checker * 0, checker * 0 + 1, checker * 0 + 0.5], axis=2)
    big = square_uint8(image, 16)
    assert big.shape == (3, 16, 16)
    assert big[0].max() == 0 and big[1].min() == 255 and torch.all(big[2] == 128)  # channels keep their order


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied_as_pil_does_for_images_and_maps(tmp_path, orientation):
    from PIL import ImageOps

    rng = np.random.default_rng(orientation)
    stored = Image.fromarray(rng.integers(0, 255, (12, 16, 3), dtype=np.uint8))
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / "phone.png"
    stored.save(path, exif=exif)
    upright = np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB"))
    np.testing.assert_array_equal(np.round(read_image(path) * 255).astype(np.uint8), upright)
    gray = tmp_path / "mask.png"
    stored.convert("L").save(gray, exif=exif)
    expected = np.asarray(ImageOps.exif_transpose(Image.open(gray)))
    np.testing.assert_array_equal(np.round(read_map(gray) * 255).astype(np.uint8), expected)
    if orientation in (5, 6, 7, 8):
        assert read_image(path).shape[:2] == (16, 12)


def test_a_false_colour_map_is_refused_and_a_gray_one_stored_as_rgb_is_read(tmp_path):
    ramp = np.tile(np.linspace(0, 255, 32).astype(np.uint8), (8, 1))
    jet = tmp_path / "jet.png"
    cv2.imwrite(str(jet), cv2.applyColorMap(ramp, cv2.COLORMAP_JET))
    with pytest.raises(ImageReadError, match=r"jet.png: a colour map whose channels differ .*expected a grayscale map"):
        read_map(jet)
    rgb = tmp_path / "rgb-gray.png"
    cv2.imwrite(str(rgb), np.repeat(ramp[:, :, None], 3, axis=2))
    np.testing.assert_allclose(read_map(rgb), ramp / 255.0, atol=1e-6)


def test_a_decoded_single_channel_plane_reads_as_gray(monkeypatch):
    import salplug.data._io as io

    monkeypatch.setattr(io, "_decode", lambda path, *limit: np.full((4, 5, 1), 204, np.uint8))
    assert read_image("one-plane.tif").shape == (4, 5, 3)
    np.testing.assert_allclose(read_map("one-plane.tif"), 0.8, atol=1e-6)
