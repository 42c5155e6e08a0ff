"""Reading photos and maps from disk into the data contract, and writing maps back.

Images come back as float32 RGB in [0, 1] whatever the file holds (grayscale, RGBA,
palette, 8 or 16 bits); maps as float32 in [0, 1]. Both are turned upright by the file's
EXIF orientation, as viewers show them (PIL's ``ImageOps.exif_transpose``), so a map
always overlays its photo as seen. Writes are atomic, so a map that
exists on disk is always complete, which lets interrupted runs resume safely.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import stat
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import Tensor

from salplug.errors import ImageReadError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
EXIF_ORIENTATION = 0x0112
_UPRIGHT = {
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.swapaxes(0, 1),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: a.swapaxes(0, 1)[::-1, ::-1],
    8: lambda a: np.rot90(a, 1),
}
"""EXIF orientation (2-8) to the array operation that shows the picture upright, as PIL's exif_transpose."""
MAX_CHANNEL_SPREAD = 8
"""Largest difference (of 255) between the channels of a pixel in a colour file still read as a gray map."""


MAX_IMAGE_PIXELS = 150_000_000
"""Default largest photo read, in pixels (width × height): a 30000×5000 panorama is read (1.8 GB as
float32 RGB, which fits an 8 GB machine); a larger file is reported instead of decoded."""
UNSUPPORTED_SUFFIXES = {".heic": "HEIC", ".heif": "HEIF", ".avif": "AVIF", ".jxl": "JPEG XL", ".psd": "Photoshop",
                        ".svg": "SVG", ".dng": "raw (DNG)", ".cr2": "raw (CR2)", ".nef": "raw (NEF)", ".arw": "raw (ARW)"}
"""Photo formats that are not decoded: their files are reported, never skipped without a word."""
PHOTO_SUFFIXES = (*IMAGE_SUFFIXES, ".gif")
"""Files a run reads as photos: `IMAGE_SUFFIXES` and GIF (its first frame)."""


def _header(data: bytes) -> tuple[int, int]:
    """(pixels, EXIF orientation) from a file's header, without decoding its pixels.

    Pixels is 0 when PIL cannot read the header (OpenCV may still decode the file), and -1
    above PIL's own decompression-bomb bound, where PIL does not say the size.
    """
    from PIL import Image, UnidentifiedImageError

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data)) as picture:
                width, height = picture.size
                try:
                    orientation = picture.getexif().get(EXIF_ORIENTATION, 1)
                except (OSError, SyntaxError, ValueError):
                    orientation = 1
        except Image.DecompressionBombError:
            return -1, 1
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
            return 0, 1
    return width * height, orientation if orientation in _UPRIGHT else 1


def _read_regular(path: Path) -> bytes:
    """The bytes of a regular file; a FIFO, device or socket is refused before it can block."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as err:
        raise ImageReadError(path, err.strerror or str(err)) from None
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise ImageReadError(path, "is a directory, not an image file")
        if not stat.S_ISREG(mode):
            raise ImageReadError(path, "not a regular file (a pipe, socket or device), so it is not read")
        with os.fdopen(fd, "rb", closefd=False) as stream:
            return stream.read()
    except OSError as err:
        raise ImageReadError(path, err.strerror or str(err)) from None
    finally:
        os.close(fd)


def _decode(path: str | Path, max_pixels: int = MAX_IMAGE_PIXELS) -> np.ndarray:
    from PIL import Image

    path = Path(path)
    if not path.exists():
        raise ImageReadError(path, "no such file")
    data = _read_regular(path)
    if not data:
        raise ImageReadError(path, "the file is empty")
    pixels, orientation = _header(data)
    bomb_bound = 2 * (Image.MAX_IMAGE_PIXELS or 0)
    if pixels > max_pixels or (pixels < 0 and bomb_bound >= max_pixels):
        size = f"{pixels} pixels" if pixels > 0 else f"more than {bomb_bound} pixels"
        raise ImageReadError(path, f"{size}, above the limit of {max_pixels} (raise it with --max-image-pixels "
                                   "if the photo fits in memory)")
    try:
        array = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    except MemoryError:
        raise ImageReadError(path, f"not enough memory to decode its {pixels} pixels; lower --max-image-pixels "
                                   "to report such photos before decoding") from None
    except cv2.error as err:
        reason = str(err).strip().splitlines()[-1]
        raise ImageReadError(path, f"OpenCV cannot decode it: {reason}") from None
    if array is None:
        raise ImageReadError(path, "not a decodable image (expected JPEG, PNG, BMP, TIFF, WebP or GIF data)")
    return np.ascontiguousarray(_UPRIGHT[orientation](array)) if orientation != 1 else array


def _to_unit(array: np.ndarray, path: str | Path) -> np.ndarray:
    if array.dtype == np.uint8:
        return array.astype(np.float32) / 255.0
    if array.dtype == np.uint16:
        return array.astype(np.float32) / 65535.0
    if array.dtype in (np.float32, np.float64):
        if not np.isfinite(array).all() or array.min() < 0 or array.max() > 1:
            raise ImageReadError(path, "floating-point pixels outside [0, 1]")
        return array.astype(np.float32)
    raise ImageReadError(path, f"unsupported pixel type {array.dtype} (expected 8 or 16 bits, or float in [0, 1])")


def read_image(path: str | Path, max_pixels: int = MAX_IMAGE_PIXELS) -> np.ndarray:
    """An ``H×W×3`` float32 RGB array in [0, 1]; alpha is dropped, gray is replicated.

    A file of more than `max_pixels` pixels is refused from its header, before its pixels
    are decoded, so one huge or forged file cannot exhaust memory. Every failure, memory
    running out on a photo under the limit included, is an `ImageReadError` naming the file.
    """
    array = _decode(path, max_pixels)
    try:
        if array.ndim == 3 and array.shape[2] == 1:
            array = array[:, :, 0]
        if array.ndim == 2:
            array = np.repeat(array[:, :, None], 3, axis=2)
        elif array.ndim == 3 and array.shape[2] == 4:
            array = cv2.cvtColor(array, cv2.COLOR_BGRA2RGB)
        elif array.ndim == 3 and array.shape[2] == 3:
            array = cv2.cvtColor(array, cv2.COLOR_BGR2RGB)
        else:
            raise ImageReadError(path, f"unsupported layout with shape {array.shape}")
        return _to_unit(np.ascontiguousarray(array), path)
    except MemoryError:
        raise ImageReadError(path, f"not enough memory for its {array.shape[0]}×{array.shape[1]} pixels as float32 "
                                   "RGB; lower --max-image-pixels to report such photos before decoding") from None
    except cv2.error as err:
        raise ImageReadError(path, f"OpenCV cannot convert it: {str(err).strip().splitlines()[-1]}") from None


def read_map(path: str | Path) -> np.ndarray:
    """An ``H×W`` float32 array in [0, 1]; colour maps are converted to gray."""
    array = _decode(path)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    elif array.ndim == 3 and array.shape[2] in (3, 4):
        scale = 255 / np.iinfo(array.dtype).max if array.dtype.kind == "u" else 255.0
        colour = array[:, :, :3].astype(np.float32) * scale
        spread = float((colour.max(axis=2) - colour.min(axis=2)).max())
        if spread > MAX_CHANNEL_SPREAD:
            raise ImageReadError(path, f"a colour map whose channels differ by up to {spread:.0f} of 255 (a false-colour "
                                       "rendering such as jet?); expected a grayscale map, one value per pixel")
        array = cv2.cvtColor(array, cv2.COLOR_BGRA2GRAY if array.shape[2] == 4 else cv2.COLOR_BGR2GRAY)
    elif array.ndim != 2:
        raise ImageReadError(path, f"unsupported layout with shape {array.shape}")
    return _to_unit(array, path)


def read_mask(path: str | Path) -> np.ndarray:
    """A boolean ``H×W`` mask: pixels above 128 of 255 are salient (the PySODMetrics convention)."""
    return read_map(path) * 255 > 128


def image_tensor(images: np.ndarray | list[np.ndarray]) -> Tensor:
    """Stack ``H×W×3`` arrays of one size into a ``B×3×H×W`` float32 tensor."""
    arrays = [images] if isinstance(images, np.ndarray) else images
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()


def map_tensor(maps: np.ndarray | list[np.ndarray]) -> Tensor:
    """Stack ``H×W`` arrays of one size into a ``B×1×H×W`` float32 tensor."""
    arrays = [maps] if isinstance(maps, np.ndarray) else maps
    return torch.from_numpy(np.stack(arrays))[:, None].contiguous()


def to_uint8(saliency: Tensor | np.ndarray) -> np.ndarray:
    """An ``H×W`` uint8 array from a single map (``H×W``, ``1×H×W`` or ``1×1×H×W``) in [0, 1]."""
    array = saliency.detach().float().cpu().numpy() if isinstance(saliency, Tensor) else np.asarray(saliency)
    while array.ndim > 2 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 2:
        raise ValueError(f"write_map: expected one H×W map, got shape {np.shape(saliency)}")
    return np.round(np.clip(array, 0.0, 1.0) * 255.0).astype(np.uint8)


def square(array: np.ndarray, size: int) -> np.ndarray:
    """An ``H×W(×C)`` array resized to ``size×size``: area interpolation when either side shrinks,
    so small objects are averaged, not aliased; linear when enlarging."""
    shrink = size < array.shape[0] or size < array.shape[1]
    return cv2.resize(array, (size, size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def square_uint8(array: np.ndarray, size: int) -> Tensor:
    """An ``H×W×3`` image or ``H×W`` map in [0, 1] as a ``C×size×size`` uint8 tensor (see `square`).

    Trainers keep whole datasets in memory this way (a quarter of float32).
    """
    quantised = torch.from_numpy(np.round(np.clip(square(array, size), 0, 1) * 255).astype(np.uint8))
    return quantised.permute(2, 0, 1) if quantised.ndim == 3 else quantised[None]


_TEMPORARY = re.compile(r"\..+\.[a-z0-9_]{8}\.tmp")
"""Names `atomic_write` gives its temporaries: ``.<target name>.<8 random characters>.tmp``."""
TEMPORARY_NAME = 200
"""Characters of the target's name kept in its temporary's name: with the dots and random part it stays
under the 255 bytes most file systems allow, however long the target's name is."""
STALE_SECONDS = 60
"""A temporary older than this belongs to a write that was killed, not to one in progress."""


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_write(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it replaces `path` in one rename.

    A reader never sees half a file, and the file gets the permissions of any other file
    the user creates (0666 less the umask), not `mkstemp`'s private 0600.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name[:TEMPORARY_NAME]}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def temporaries_of(path: str | Path) -> list[Path]:
    """The `atomic_write` temporaries of `path` in its folder: ``.<name>.<8 random characters>.tmp`` only."""
    path = Path(path)
    prefix = f".{path.name[:TEMPORARY_NAME]}."
    if not path.parent.is_dir():
        return []
    return sorted(p for p in path.parent.iterdir()
                  if p.name.startswith(prefix) and re.fullmatch(r"[a-z0-9_]{8}\.tmp", p.name[len(prefix):]))


def remove_stale_temporaries(folder: str | Path) -> list[Path]:
    """Delete `atomic_write` temporaries under `folder` left by a killed run; returns them."""
    removed = []
    now = time.time()
    for here, _, files in os.walk(folder):
        for name in files:
            path = Path(here) / name
            if _TEMPORARY.fullmatch(name):
                with contextlib.suppress(OSError):
                    if now - path.stat().st_mtime > STALE_SECONDS:
                        path.unlink()
                        removed.append(path)
    return removed


def encode_png(array: np.ndarray, name: str = "array") -> bytes:
    """PNG bytes of an 8-bit array (gray or RGB), the bytes `write_png` stores."""
    pixels = cv2.cvtColor(array, cv2.COLOR_RGB2BGR) if array.ndim == 3 else array
    ok, encoded = cv2.imencode(".png", pixels)
    if not ok:
        raise OSError(f"could not encode {name} as PNG")
    return encoded.tobytes()


def write_png(path: str | Path, array: np.ndarray) -> Path:
    """Atomically write an 8-bit array (gray or RGB) as PNG, creating parent folders."""
    path = Path(path)
    data = encode_png(array, str(path))
    with atomic_write(path) as tmp:
        tmp.write_bytes(data)
    return path


PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"
"""The last 12 bytes of every PNG file (its empty IEND chunk): a file cut short lacks them."""


def png_complete(path: str | Path) -> bool:
    """True for a file that ends as a PNG ends, so a map cut short (a full disk, a copy stopped) is redone."""
    if not os.path.isfile(path):
        return False
    try:
        with open(path, "rb") as stream:
            stream.seek(-len(PNG_END), os.SEEK_END)
            return stream.read() == PNG_END
    except OSError:
        return False


def write_map(path: str | Path, saliency: Tensor | np.ndarray) -> Path:
    """Atomically write one map in [0, 1] as an 8-bit grayscale PNG."""
    return write_png(path, to_uint8(saliency))


def file_sha256(path: str | Path) -> str:
    """The hex sha256 of a file's bytes, read in blocks (weights files, maps and masks alike)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
