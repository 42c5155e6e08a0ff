"""Base classes of the registrable kinds: five kinds of chain component, and trainers.

A component is a `torch.nn.Module` subclass with a registry `name`, a pydantic `Config`
that forbids unknown fields, and one documented call signature per kind. It is built from
its config alone, so a chain spec (names and options) is enough to rebuild it. A trainer
is the training job of a trainable component, registered and configured the same way.
"""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError
import torch
import yaml
from torch import Tensor, nn

from salplug.components._weight_files import noting
from salplug.errors import ConfigError, SalplugError, did_you_mean

KINDS: tuple[str, ...] = ("backbone", "prior", "refiner", "postprocessor", "metric", "trainer")


class ComponentConfig(BaseModel):
    """Base of every component's `Config`: unknown fields are errors, configs are immutable,
    and a float is finite (``--set x=.inf`` or ``.nan`` is refused, naming the field)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def _problems(err: ValidationError, fields: Sequence[str]) -> list[tuple[str, str]]:
    """(field, message) per error; a field the config does not have names its closest real field."""
    problems = []
    for e in err.errors():
        field, message = ".".join(str(p) for p in e["loc"]) or "(config)", e["msg"]
        if e["type"] == "extra_forbidden":
            message += did_you_mean(field, fields) or f"; the fields are {', '.join(fields) or 'none'}"
        problems.append((field, message))
    return problems


class Configurable:
    """Registry name, kind and validated pydantic `Config`: what every registrable class shares."""

    kind: ClassVar[str] = ""
    name: ClassVar[str] = ""
    Config: ClassVar[type[ComponentConfig]] = ComponentConfig

    example_config: ClassVar[Mapping[str, Any] | None] = None
    """Options the conformance kit builds the component with: small, fast and offline (None: defaults)."""

    @classmethod
    def make_config(
        cls, config: ComponentConfig | Mapping[str, Any] | None = None, *, step: str | None = None, **options: Any
    ) -> ComponentConfig:
        """Validate options against `Config`, naming the step and fields on failure."""
        if isinstance(config, cls.Config) and not options:
            return config
        data = dict(config.model_dump() if isinstance(config, BaseModel) else (config or {}))
        data.update(options)
        try:
            return cls.Config.model_validate(data)
        except ValidationError as err:
            raise ConfigError(cls.kind, cls.name, _problems(err, list(cls.Config.model_fields)), step=step) from None


class _NotesWeights(type):
    """Builds a component while noting the weights files it reads, into its `weight_files`."""

    def __call__(cls, *args: Any, **kwargs: Any):
        with noting() as files:
            component = super().__call__(*args, **kwargs)
        component.weight_files = files
        return component


class Component(Configurable, nn.Module, metaclass=_NotesWeights):
    """Common ground of the chain kinds: name, validated config, device rules, weights.

    Subclasses set `name` and usually a nested `Config(ComponentConfig)`. Build with
    keyword options (`Median(size=5)`), a config object, or a mapping.
    """

    device_bound: ClassVar[str | None] = None
    """Set to ``"cpu"`` when the step only runs on the CPU; chains move data at its boundary."""

    checkpoint_skip: ClassVar[tuple[str, ...]] = ()
    """State keys (prefixes) `save_weights` leaves out: parts rebuilt from a weight tag on construction."""

    checkpoint_dtype: ClassVar[torch.dtype | None] = None
    """Store floating state in this dtype (e.g. ``torch.float16``); loading casts back to the module's."""

    learned: ClassVar[bool] = False
    """True when the component's output depends on trained weights, which `load_weights` brings."""

    weights_from: Path | None = None
    """The checkpoint `load_weights` read, if any."""

    weight_files: Mapping[str, str | None] = MappingProxyType({})
    """Every weights file read to build this component (encoder weights by tag, checkpoints), path to sha256."""

    @property
    def untrained(self) -> bool:
        """A learned component whose weights never came from a checkpoint (chains warn about it)."""
        return self.learned and self.weights_from is None

    def __init__(self, config: ComponentConfig | Mapping[str, Any] | None = None, **options: Any):
        super().__init__()
        self.config = self.make_config(config, **options)

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.config.model_dump().items())

    def save_weights(self, path: str | Path, card: Mapping[str, Any] | None = None) -> Path:
        """Write this component's learned state (and an optional model card) to `path`."""
        from salplug.components._weights import save_component

        return save_component(self, path, card)

    def load_weights(self, path: str | Path, *, strict: bool = True) -> dict[str, Any]:
        """Load state written by `save_weights` of the same kind and name; returns the card."""
        from salplug.components._weights import load_component

        with noting() as files:
            card = load_component(self, path, strict=strict)
        self.weights_from = Path(path)
        self.weight_files = {**self.weight_files, **files}
        return card


class Backbone(Component):
    """Image encoder: contract image in, list of feature maps (shallow to deep) out.

    The backbone normalises its input itself (the weight tag knows how), so callers
    always pass contract images in [0, 1].
    """

    kind = "backbone"

    @property
    def channels(self) -> list[int]:
        """Channels of each returned feature level."""
        raise NotImplementedError

    @property
    def strides(self) -> list[int]:
        """Stride (input pixels per feature pixel) of each returned level."""
        raise NotImplementedError

    def forward(self, image: Tensor) -> list[Tensor]:
        raise NotImplementedError


class PriorProvider(Component):
    """First step of a chain: image batch in, saliency map out.

    `keys` names each image (the file's stem in directory runs), for priors that look
    maps up rather than compute them.
    """

    kind = "prior"

    def forward(self, image: Tensor, keys: Sequence[str] | None = None) -> Tensor:
        raise NotImplementedError


class Refiner(Component):
    """Improves a map using its image: (image B×3×H×W, saliency B×1×H×W) -> B×1×H×W."""

    kind = "refiner"
    stateful: ClassVar[bool] = False
    """True when outputs depend on images seen before (cross-image refiners)."""

    def forward(self, image: Tensor, saliency: Tensor) -> Tensor:
        raise NotImplementedError


class PostProcessor(Component):
    """Cleans a map without learning: (image, saliency) -> saliency, same shape."""

    kind = "postprocessor"

    def forward(self, image: Tensor, saliency: Tensor) -> Tensor:
        raise NotImplementedError


class Metric(Component):
    """Scores maps against masks, accumulating over a dataset.

    `update` takes a batch and returns its per-image scores; `compute` aggregates
    everything seen since the last `reset`.
    """

    kind = "metric"

    def update(self, saliency: Tensor, mask: Tensor) -> dict[str, Tensor]:
        raise NotImplementedError

    def compute(self) -> dict[str, float]:
        raise NotImplementedError

    def reset(self) -> None:
        raise NotImplementedError

    def curves(self) -> dict[str, Tensor]:
        """Dataset-averaged threshold curves (e.g. ``precision``, ``recall``) for plots; none by default."""
        return {}

    def merge(self, other: Metric) -> None:
        """Add the state `other` accumulated (same class and config) to this one.

        How scoring spreads over processes (`salplug eval --engine ray`): each worker
        updates its own copy, and the merged copy computes what one process seeing every
        image would. A metric that cannot merge says so here.
        """
        raise NotImplementedError(
            f"metric {self.name!r}: expected a merge() of partial states for distributed scoring, got none"
        )


INPUT_MARK = "salplug_input"
"""Key of a config field's JSON-schema extra that marks it as a training input (see `input_field`)."""


def input_field(default: Any = ..., *, description: str, how: str = "", **options: Any) -> Any:
    """A trainer field naming input files or folders, checked before training starts.

    `how` tells a user who lacks the input how to make it (a command), so a missing
    folder is one line naming the field and the remedy, not a ``FileNotFoundError``.
    """
    return Field(default, description=description, json_schema_extra={INPUT_MARK: how}, **options)


DATA_ENV = "SALPLUG_DATA"
"""The folder holding the training sets; trainers' data defaults start with it (``$SALPLUG_DATA/duts-tr``)."""


def _input_fields(config: ComponentConfig) -> dict[str, str]:
    """The config's `input_field` names, each with its remedy (`how`)."""
    fields = {}
    for field, info in type(config).model_fields.items():
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        if INPUT_MARK in extra:
            fields[field] = extra[INPUT_MARK]
    return fields


def _expand(value: Any) -> Any:
    """``$SALPLUG_DATA`` (or any set variable) in a path, or in each of a list of paths, replaced by its value."""
    if isinstance(value, str):
        return os.path.expandvars(value)
    if isinstance(value, list):
        return [_expand(v) for v in value]
    return value


def _read_settings(path: str | Path, trainer: Configurable) -> dict[str, Any]:
    """The mapping of config fields in YAML or JSON file `path`; anything else is a `ConfigError`."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError) as err:
        reason = " ".join(str(err).split())
        raise ConfigError(trainer.kind, trainer.name, [("(config file)", f"cannot read {path}: {reason}")]) from None
    if not isinstance(data, dict):
        raise ConfigError(trainer.kind, trainer.name, [
            ("(config file)", f"expected {path} to hold a mapping of fields, got {type(data).__name__}")])
    return data


class TrainerInputError(SalplugError, FileNotFoundError):
    """A trainer input (an `input_field`) that does not exist."""


class Trainer(Configurable):
    """The training job of a trainable component: reads data named in its config, writes a checkpoint.

    ``salplug train NAME --config FILE --set field=value`` builds one from its config and
    calls `run`, which returns the checkpoint's path; everything the job needs is a `Config`
    field, so the command that made a checkpoint is enough to make it again.
    """

    kind = "trainer"

    config_file: str | None = None
    """The YAML or JSON file of settings the job was given (``--config``), if any: `command` names it."""

    def __init__(self, config: ComponentConfig | Mapping[str, Any] | None = None, *,
                 config_file: str | Path | None = None, **options: Any):
        """Settings from `config_file`, then `config`, then `options`, each winning over the one before."""
        self._file_settings = {} if config_file is None else _read_settings(config_file, self)
        given = config.model_dump() if isinstance(config, BaseModel) else dict(config or {})
        config = self.make_config({**self._file_settings, **given}, **options)
        self.config = config.model_copy(update={field: _expand(getattr(config, field)) for field in _input_fields(config)})
        if config_file is not None:
            self.config_file = str(config_file)

    def command(self) -> str:
        """The ``salplug train`` command that runs this job again, with ``--config`` when it had a file: for model cards.

        Its ``--set`` options are the fields whose value differs from the file's (or, for a
        field the file leaves out, from the default).
        """
        words = ["salplug", "train", self.name]
        if self.config_file is not None:
            words += ["--config", self.config_file]
        changed = self.config.model_dump(mode="json", exclude_defaults=True)
        from_file = {k: _expand(v) if k in _input_fields(self.config) else v for k, v in self._file_settings.items()}
        for key, value in self.config.model_dump(mode="json").items():
            if (from_file[key] == value) if key in from_file else key not in changed:
                continue
            text = value if isinstance(value, str) else json.dumps(value)
            words += ["--set", f"{key}={text}"]
        return shlex.join(words)

    def check_inputs(self) -> None:
        """Raise `TrainerInputError` for the first `input_field` path that does not exist."""
        for field, how in _input_fields(self.config).items():
            value = getattr(self.config, field)
            for path in value if isinstance(value, (list, tuple)) else [value]:
                if path is not None and DATA_ENV in str(path):
                    raise TrainerInputError(
                        f"trainer {self.name!r}, field {field!r}: {path} names ${DATA_ENV}, which is not set; set it to "
                        f"the folder holding your training sets (e.g. duts-tr/) or pass --set {field}=...")
                if path is not None and not Path(path).exists():
                    how = f"; {how}" if how else ""
                    raise TrainerInputError(f"trainer {self.name!r}, field {field!r}: {path} does not exist{how}")

    def run(self) -> Path:
        raise NotImplementedError


BASES: dict[str, type[Configurable]] = {
    cls.kind: cls for cls in (Backbone, PriorProvider, Refiner, PostProcessor, Metric, Trainer)
}
