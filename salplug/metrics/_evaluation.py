"""Scoring maps against a dataset's masks: folders of maps, or a chain run over the images.

Every map is scored the way published SOD tables are (PySODMetrics conventions): as an
8-bit image, min-max normalised unless constant, against masks binarised at > 128 (a mask
stored as 0/1 is read as 0/255, with a warning). A chain's output is quantised to 8 bits
first, exactly as `salplug run` writes it, so scoring a chain and scoring the maps it wrote
give the same numbers.
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm

from salplug.pipeline._batching import failure_reason, isolated, size_batches
from salplug.pipeline._chain import Chain
from salplug.components._base import Metric
from salplug.data._datasets import DatasetError, SODDataset, index_folder
from salplug.errors import ImageReadError
from salplug.host._factory import build, list_components
from salplug.data._io import image_tensor, read_image, read_map, write_map
from salplug.metrics._sodmetrics import prepare_uint8

MISSING_MAP = "no map for this image"
MISSING_PRIOR = "no prior map for this image"
MISSING = (MISSING_MAP, MISSING_PRIOR)
"""Reasons that mean a folder simply lacks a file: reported as a count, listed on request."""

COLUMNS = ("mae", "adp_f", "mean_f", "max_f", "sm", "adp_e", "mean_e", "max_e", "wfm", "adp_iou", "adp_dice")
"""Preferred order of score columns; scores of other installed metrics follow, sorted."""


@dataclass
class MethodScores:
    """One method's dataset scores, averaged curves, and the images it could not score.

    `unsaved` names maps that were scored but could not be written (``--save-maps``): a
    write is no part of the score. `per_image` holds each metric's per-image scores by
    image key, for paired comparisons; `maps` the file of each scored image's map where
    one is on disk, so a report can show it.
    """

    name: str
    scores: dict[str, float] = field(default_factory=dict)
    curves: dict[str, list[float]] = field(default_factory=dict)
    count: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    unsaved: dict[str, str] = field(default_factory=dict)
    per_image: dict[str, dict[str, float]] = field(default_factory=dict)
    maps: dict[str, str] = field(default_factory=dict)


def read_uint8(path: str | Path) -> np.ndarray:
    """An ``H×W`` uint8 map or mask, as the PySOD protocol reads it (colour is made gray)."""
    return np.round(read_map(path) * 255).astype(np.uint8)


def read_mask_uint8(path: str | Path, warned: set[Path] | None = None) -> np.ndarray:
    """A mask as `read_uint8` reads it, except that one whose maximum is 1 is a 0/1 mask, made 0/255.

    Masks are binarised at > 128, so a 0/1 mask (as many PySODEvalToolkit users store them)
    would be all background and score F = 0. The maximum is taken at the file's own bit
    depth, so a 16-bit 0/1 mask counts too. The first such mask of a folder is named in a
    warning; `warned` holds the folders already named, so one pass warns once per folder.
    """
    values = read_map(path)
    top = float(values.max())
    if not (math.isclose(top * 255, 1, rel_tol=1e-4) or math.isclose(top * 65535, 1, rel_tol=1e-4)):
        return np.round(values * 255).astype(np.uint8)
    path = Path(path)
    if warned is None or path.parent not in warned:
        warnings.warn(f"{path}: maximum value 1, read as a 0/1 mask (1 = salient), as PySODEvalToolkit datasets "
                      f"often store them; other masks in {path.parent} with maximum 1 are read the same way",
                      stacklevel=2)
        if warned is not None:
            warned.add(path.parent)
    return np.where(values > 0, np.uint8(255), np.uint8(0))


def quantize(saliency: Tensor) -> Tensor:
    """Maps in [0, 1] to uint8 the way `salplug.data._io.write_map` stores them."""
    return torch.round(saliency.detach().float().clamp(0, 1) * 255).to(torch.uint8).cpu()


class Scorer:
    """A set of metric components fed with 8-bit maps and masks."""

    def __init__(self, name: str, metrics: Sequence[str] | None = None):
        self.result = MethodScores(name)
        self.metrics: list[Metric] = [build("metric", m) for m in (metrics or list_components("metric"))]
        self.rows: list[tuple[str, dict[str, float]]] = []
        """(image key, that image's scores) in the order scored."""

    def add(self, maps: Tensor, masks: Tensor, keys: Sequence[str] | None = None) -> None:
        """Score a batch, all of it or none: a metric raising midway leaves every state as it was.

        With `keys` (one per map), each image's scores are kept for paired comparisons.
        """
        with transaction(self):
            pred, gt = prepare_uint8(maps, masks)
            per_image: dict[str, Tensor] = {}
            for metric in self.metrics:
                per_image.update(metric.update(pred, gt) or {})
            if keys is not None:
                self.rows += _rows(keys, per_image, maps.shape[0])
            self.result.count += maps.shape[0]

    def merge(self, other: Scorer) -> None:
        """Add another worker's scorer of the same metrics (its images and failures) to this one."""
        for mine, theirs in zip(self.metrics, other.metrics, strict=True):
            mine.merge(theirs)
        self.result.count += other.result.count
        self.result.failed.update(other.result.failed)
        self.result.unsaved.update(other.result.unsaved)
        self.rows += other.rows

    def finish(self, maps: Mapping[str, Path] | None = None) -> MethodScores:
        """The result; `maps` (image key → file of its map) names the scored images' maps, unsaved ones left out."""
        scores: dict[str, float] = {}
        for metric in self.metrics:
            scores.update(metric.compute())
            self.result.curves.update({k: v.tolist() for k, v in metric.curves().items()})
        order = [c for c in COLUMNS if c in scores] + sorted(set(scores) - set(COLUMNS))
        self.result.scores = {k: scores[k] for k in order}
        per_image: dict[str, dict[str, float]] = {}
        for key, row in self.rows:
            for metric, value in row.items():
                per_image.setdefault(metric, {})[key] = value
        self.result.per_image = per_image
        self.result.maps = {key: str(maps[key]) for key, _ in self.rows
                            if key in maps and str(maps[key]) not in self.result.unsaved} if maps else {}
        return self.result


def _rows(keys: Sequence[str], per_image: dict[str, Tensor], count: int) -> list[tuple[str, dict[str, float]]]:
    if len(keys) != count:
        raise ValueError(f"keys: expected one per map ({count}), got {len(keys)}")
    columns = {k: v.detach().cpu().double().tolist() for k, v in per_image.items()
               if isinstance(v, Tensor) and v.shape[:1] == (count,) and v.ndim == 1}
    return [(str(key), {k: values[i] for k, values in columns.items()}) for i, key in enumerate(keys)]


@contextmanager
def transaction(*scorers: Scorer) -> Iterator[None]:
    """What the block adds to `scorers` counts only if it all succeeds.

    A batch that fails is retried image by image (`isolated`); without the rollback its
    images scored before the failure would be counted again.
    """
    saved = [(copy.deepcopy(s.metrics), s.result.count, len(s.rows)) for s in scorers]
    try:
        yield
    except BaseException:
        for scorer, (metrics, count, rows) in zip(scorers, saved):
            scorer.metrics, scorer.result.count = metrics, count
            del scorer.rows[rows:]
        raise


def stack_uint8(arrays: list[np.ndarray]) -> Tensor:
    return torch.from_numpy(np.stack(arrays))[:, None]


def _sized(mask: np.ndarray, other: np.ndarray, path: Path) -> None:
    if other.shape[:2] != mask.shape:
        raise ImageReadError(
            path, f"size {other.shape[1]}×{other.shape[0]} differs from its mask's {mask.shape[1]}×{mask.shape[0]}"
        )


def _counted(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def require_pairs(dataset: SODDataset) -> None:
    """Refuse a dataset without one image to score: its scores would be NaN, which reads like a result."""
    if dataset.keys:
        return
    paired = len(dataset.paired)
    if paired:
        got = f"{_counted(paired, 'pair')}, none in the subset"
    else:
        got = f"{_counted(len(dataset.images), 'image')} and {_counted(len(dataset.masks), 'mask')}"
        got += ", none sharing a name" if dataset.images and dataset.masks else ""
    raise DatasetError(f"dataset {dataset.root}: expected images with masks of the same name in "
                       f"{dataset.image_folder} and {dataset.mask_folder}, got {got}")


def fit_to_mask(prediction: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """A map of another size than its mask, resized to it (bilinear) as PySODEvalToolkit does before scoring."""
    if prediction.shape == mask.shape:
        return prediction
    return cv2.resize(prediction, dsize=mask.shape[::-1], interpolation=cv2.INTER_LINEAR).astype(np.uint8)


def load_map_pair(dataset: SODDataset, key: str, maps: dict[str, Path], folder: Path,
                  warned: set[Path] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(map, mask)`` of one dataset image as uint8; a missing or unreadable map is an `ImageReadError`.

    A map of another size is resized to its mask (`fit_to_mask`); the grid's pairing report
    counts those. `warned`: folders of 0/1 masks already warned about (see `read_mask_uint8`).
    """
    path = maps.get(key)
    if path is None:
        raise ImageReadError(folder / key, MISSING_MAP)
    mask = read_mask_uint8(dataset.masks[key], warned)
    return fit_to_mask(read_uint8(path), mask), mask


def score_folder(
    dataset: SODDataset,
    folder: str | Path,
    name: str,
    *,
    maps: dict[str, Path] | None = None,
    metrics: Sequence[str] | None = None,
    batch_size: int = 16,
    progress: bool = False,
) -> MethodScores:
    """Score the maps in `folder` (one per dataset image, paired by stem).

    `maps` (image key → file) pairs them otherwise, e.g. file names with a prefix or suffix.
    """
    require_pairs(dataset)
    folder = Path(folder)
    scorer = Scorer(name, metrics)
    if maps is None:
        maps, clashes = index_folder(folder)
        scorer.result.failed.update(clashes)
    warned: set[Path] = set()

    def pairs() -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
        for key in tqdm(dataset.keys, desc=name, unit="image", disable=not progress):
            try:
                yield key, *load_map_pair(dataset, key, maps, folder, warned)
            except ImageReadError as err:
                scorer.result.failed[err.path] = err.reason

    for batch in size_batches(pairs(), lambda pair: pair[2].shape, batch_size):
        keys, predictions, masks = zip(*batch)
        scorer.add(stack_uint8(list(predictions)), stack_uint8(list(masks)), keys)
    return scorer.finish(maps)


def load_entry(dataset: SODDataset, key: str, prior_maps: dict[str, Path] | None, prior_folder: Path | None,
               warned: set[Path] | None = None) -> tuple:
    """``(key, image, prior or None, mask)`` of one dataset image; `ImageReadError` names the file at fault.

    `warned`: folders of 0/1 masks already warned about (see `read_mask_uint8`).
    """
    mask = read_mask_uint8(dataset.masks[key], warned)
    image = read_image(dataset.images[key])
    _sized(mask, image, dataset.images[key])
    if prior_maps is None:
        return key, image, None, mask
    path = prior_maps.get(key)
    if path is None:
        raise ImageReadError(Path(prior_folder) / key, MISSING_PRIOR)
    prior = read_uint8(path)
    _sized(mask, prior, path)
    return key, image, prior, mask


def refine_and_score(
    chain: Chain,
    batch: list[tuple],
    *,
    input_name: str,
    given: bool,
    after: Scorer,
    before: Scorer | None = None,
    save_folder: Path | None = None,
) -> None:
    """One batch of `load_entry` entries (one size) through the chain, scored into `after` (and its input into `before`).

    With `given`, the chain starts from the entries' prior maps; otherwise from its own
    prior step, whose map (`input_name`) is the input. Maps go to `save_folder` as 8-bit
    PNGs after scoring; a map that cannot be written lands in ``after.result.unsaved`` and
    keeps its score. Whatever raises leaves both scorers as they were, so the batch can be
    retried image by image.
    """
    keys = [entry[0] for entry in batch]
    images = image_tensor([entry[1] for entry in batch])
    prior = stack_uint8([entry[2] for entry in batch]) if given else None
    with torch.inference_mode():
        if prior is not None:
            out, start = chain(images, keys=keys, prior=prior.float() / 255), prior
        else:
            steps = chain(images, keys=keys, return_steps=True).steps
            out, start = list(steps.values())[-1], quantize(steps[input_name])
    output = quantize(out)
    masks = stack_uint8([entry[3] for entry in batch])
    with transaction(after, *([before] if before is not None else [])):
        after.add(output, masks, keys)
        if before is not None:
            before.add(start, masks, keys)
    if save_folder is not None:
        for key, saliency in zip(keys, output):
            path = save_folder / f"{key}.png"
            try:
                write_map(path, saliency.float() / 255)
            except Exception as err:
                after.result.unsaved[str(path)] = failure_reason(err)


@dataclass(frozen=True)
class ChainPass:
    """One pass of `score_chain` over a dataset: where its starting maps come from and what its rows are called."""

    prior_folder: Path | None
    prior_maps: dict[str, Path] | None
    input_name: str
    output_name: str
    save_folder: Path | None

    @classmethod
    def of(cls, dataset: SODDataset, chain: Chain, name: str, prior_name: str | None,
           save_maps: str | Path | None) -> ChainPass:
        """The pass starting from prior `prior_name` (None: the chain's own prior step)."""
        prior_folder = dataset.prior_folder(prior_name) if prior_name else None
        return cls(
            prior_folder=prior_folder,
            prior_maps=index_folder(prior_folder)[0] if prior_folder else None,
            input_name=prior_name or next(iter(chain.named_steps)),
            output_name=f"{prior_name} → {name}" if prior_name else name,
            save_folder=Path(save_maps) / (prior_name or name) if save_maps is not None else None,
        )

    def map_files(self, keys: Sequence[str]) -> tuple[dict[str, Path], dict[str, Path]]:
        """Files of the input's and the output's maps by image key: the prior folder's, and those saved."""
        saved = {key: self.save_folder / f"{key}.png" for key in keys} if self.save_folder is not None else {}
        return self.prior_maps or {}, saved


def score_chain(
    dataset: SODDataset,
    chain: Chain,
    name: str,
    *,
    priors: Sequence[str] = (),
    score_input: bool = False,
    metrics: Sequence[str] | None = None,
    batch_size: int = 8,
    save_maps: str | Path | None = None,
    progress: bool = False,
) -> list[MethodScores]:
    """Run `chain` over the dataset's images and score its output (and, optionally, its input).

    With `priors`, the chain starts from each named prior folder's maps (its own prior
    step is bypassed) and each is reported as ``"<prior>"`` and ``"<prior> → <name>"``.
    Without, the chain runs its prior step with the image keys; `score_input` then
    scores that step's map under the step's name.
    """
    require_pairs(dataset)
    results = []
    for prior_name in priors or [None]:
        run = ChainPass.of(dataset, chain, name, prior_name, save_maps)
        before, after = Scorer(run.input_name, metrics), Scorer(run.output_name, metrics)
        failed: dict[str, str] = {}
        warned: set[Path] = set()

        def loaded():
            for key in tqdm(dataset.keys, desc=run.output_name, unit="image", disable=not progress):
                try:
                    yield load_entry(dataset, key, run.prior_maps, run.prior_folder, warned)
                except ImageReadError as err:
                    failed[err.path] = err.reason

        def refine(batch: list[tuple]) -> None:
            refine_and_score(chain, batch, input_name=run.input_name, given=run.prior_folder is not None, after=after,
                             before=before if score_input else None, save_folder=run.save_folder)

        def failure(entry: tuple, err: Exception) -> None:
            failed[str(dataset.images[entry[0]])] = failure_reason(err)

        for batch in size_batches(loaded(), lambda entry: entry[1].shape, batch_size):
            isolated(batch, refine, failure)
        inputs, saved = run.map_files(dataset.keys)
        for scorer in ([before] if score_input else []) + [after]:
            scorer.result.failed.update(failed)
            results.append(scorer.finish(saved if scorer is after else inputs))
    return results
