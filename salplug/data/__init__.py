"""Files in and out: photos, masks and maps on disk, datasets of them, batches for the chain.

Reading and writing follow the data contract (float RGB B×3×H×W and B×1×H×W maps in [0, 1]);
maps are written atomically so a map on disk is always complete.
"""

from salplug.data._datasets import (
    DatasetError,
    FolderDataset,
    SODDataset,
    held_fold,
    hold_out,
    index_folder,
    link_view,
    read_subset,
    split,
    subset,
)
from salplug.data._inputs import InputItem, collect_inputs
from salplug.data._io import (
    IMAGE_SUFFIXES,
    atomic_write,
    image_tensor,
    map_tensor,
    read_image,
    read_map,
    read_mask,
    square,
    square_uint8,
    to_uint8,
    write_map,
    write_png,
)
from salplug.data._loading import ImageBatch, LoadError, load_groups, load_images
from salplug.data._samples import SAMPLES, sample_batch, sample_photo, sample_tensor
from salplug.data._visualize import contact_sheet

__all__ = [
    "IMAGE_SUFFIXES", "SAMPLES", "DatasetError", "FolderDataset", "ImageBatch",
    "InputItem", "LoadError", "SODDataset", "atomic_write", "collect_inputs", "contact_sheet",
    "held_fold", "hold_out", "image_tensor", "index_folder", "link_view", "load_groups", "load_images",
    "map_tensor", "read_image", "read_subset", "read_map", "read_mask", "sample_batch", "sample_photo", "sample_tensor",
    "split", "square", "square_uint8", "subset", "to_uint8", "write_map", "write_png",
]
