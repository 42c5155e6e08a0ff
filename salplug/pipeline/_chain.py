"""`Chain`: named steps run in order on one device, as a `torch.nn.Module`.

Order comes from the chain (one prior, then refiners, then post-processors), never from
plugin hook order. The chain guards the data contract at every step boundary, so a
misbehaving plugin is named the moment it breaks it.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from salplug.components._base import Component, PostProcessor, PriorProvider, Refiner
from salplug.components._contracts import check_image, check_map
from salplug.errors import ChainError, ContractError, SalplugError, StepError, UnknownComponentError, UntrainedWarning
from salplug.host._factory import get_component
from salplug.host._manager import get_host
from salplug.pipeline._spec import ChainSpec, StepSpec, load_spec, parse_spec, step_name_problem, unique_names

_RANK = {"prior": 0, "refiner": 1, "postprocessor": 2}


class ChainOutput(NamedTuple):
    """The final map and, by step name, the map each step produced."""

    saliency: Tensor
    steps: dict[str, Tensor]


def _named(steps: Iterable[Component | tuple[str, Component]]) -> list[tuple[str, Component]]:
    """(name, component) pairs; unnamed components are named by `unique_names`, as in specs."""
    given, components = [], []
    for i, step in enumerate(steps):
        name, component = step if isinstance(step, tuple) else (None, step)
        if not isinstance(component, (PriorProvider, Refiner, PostProcessor)):
            raise ChainError(
                f"chain step {i} ({name or getattr(component, 'name', '')!r}): expected a PriorProvider, Refiner "
                f"or PostProcessor, got {type(component).__name__}"
            )
        given.append(name)
        components.append(component)
    return list(zip(unique_names(given, [c.name for c in components]), components))


def _validate(named: list[tuple[str, Component]]) -> None:
    if not named:
        raise ChainError("a chain needs at least one step: a prior provider")
    seen: set[str] = set()
    for i, (name, component) in enumerate(named):
        label = f"chain step {i} ({name!r}, {component.kind} {component.name!r})"
        problem = step_name_problem(name)
        if problem:
            raise ChainError(f"{label}: {problem}")
        if name in seen:
            raise ChainError(f"{label}: step name {name!r} is used twice; give each step its own name")
        seen.add(name)
        if i == 0 and component.kind != "prior":
            raise ChainError(f"{label}: expected a prior provider as the first step, got a {component.kind}")
        if i > 0 and component.kind == "prior":
            raise ChainError(f"{label}: a chain has exactly one prior provider, at the start")
        if i > 0 and _RANK[component.kind] < _RANK[named[i - 1][1].kind]:
            raise ChainError(f"{label}: refiners must come before post-processors")


class Chain(nn.Module):
    """A prior provider, then any refiners, then any post-processors.

    Build it from components (``Chain([prior, ("crf", densecrf)])``) or from a spec
    (`Chain.from_spec`). Move it once with ``.to(device)``; inputs follow. Call it with
    keyword options: ``chain(images, keys=stems)`` or ``chain(images, prior=maps)`` to
    start from maps you already have instead of running the prior step.

    Shapes, dtypes and sizes are checked at every step boundary, and so are values: the
    input image and every step's map must be finite and in [0, 1] (one min/max reduction
    per boundary, under 2 % of a chain call, `benchmarks/test_chain_overhead.py`), so a NaN
    or a 0-255 image is named where it appears instead of being written as a wrong map.
    ``check_values=False`` skips the value checks, an explicit opt-out for a trusted chain.
    """

    def __init__(
        self,
        steps: Iterable[Component | tuple[str, Component]],
        *,
        micro_batch: int | None = None,
        check_values: bool = True,
    ):
        super().__init__()
        named = _named(steps)
        _validate(named)
        for name, component in named:
            if component.untrained:
                warnings.warn(f"step {name!r} ({component.kind} {component.name!r}) has no trained weights "
                              "(checkpoint: null): its maps are not the method's; give it a checkpoint",
                              UntrainedWarning, stacklevel=2)
        if micro_batch is not None and micro_batch < 1:
            raise ChainError(f"micro_batch: expected a positive integer or None, got {micro_batch}")
        self.steps = nn.ModuleDict(named)
        self.micro_batch = micro_batch
        self.check_values = check_values
        self.register_buffer("_device_anchor", torch.empty(0), persistent=False)

    @classmethod
    def from_spec(cls, spec: ChainSpec | Mapping[str, Any] | str | Path, **overrides: Any) -> Chain:
        """Build from a `ChainSpec`, a mapping, or a YAML/JSON file path."""
        spec = load_spec(spec) if isinstance(spec, (str, Path)) else parse_spec(spec)
        steps = []
        for step in spec.steps:
            try:
                component_cls = get_component(step.kind, step.component)
            except UnknownComponentError as err:
                raise UnknownComponentError(err.kind, err.name, err.installed, err.note, step=step.name) from None
            steps.append((step.name, component_cls(component_cls.make_config(step.config, step=step.name))))
        options = {"micro_batch": spec.micro_batch, **overrides}
        return cls(steps, **options)

    @classmethod
    def named(cls, name: str, **overrides: Any) -> Chain:
        """Build a chain a plugin ships, by its registered name (``salplug list chain`` shows them)."""
        return cls.from_spec(get_host().chains.get(name).spec, **overrides)

    def to_spec(self) -> ChainSpec:
        """The spec that rebuilds this chain, with every config field written out."""
        return ChainSpec(
            micro_batch=self.micro_batch,
            steps=[
                StepSpec(kind=c.kind, component=c.name, name=n, config=c.config.model_dump(mode="json"))
                for n, c in self.steps.items()
            ],
        )

    @property
    def named_steps(self) -> dict[str, Component]:
        return dict(self.steps.items())

    @property
    def device(self) -> torch.device:
        return self._device_anchor.device

    def set_params(self, **params: Any) -> Chain:
        """Change step options scikit-learn style (``median__size=7``); rebuilds those steps."""
        updates: dict[str, dict[str, Any]] = {}
        for key, value in params.items():
            step, sep, field = key.partition("__")
            if not sep or step not in self.steps:
                raise ChainError(f"set_params: expected 'step__field' with a step in {list(self.steps)}, got {key!r}")
            updates.setdefault(step, {})[field] = value
        for step, fields in updates.items():
            old = self.steps[step]
            config = type(old).make_config({**old.config.model_dump(), **fields}, step=step)
            self.steps[step] = type(old)(config).to(self.device)
        return self

    def forward(
        self,
        image: Tensor,
        *,
        keys: Sequence[str] | None = None,
        prior: Tensor | None = None,
        return_steps: bool = False,
    ) -> Tensor | ChainOutput:
        check_image(image, values=self.check_values)
        image = image.to(self.device)
        batch = image.shape[0]
        if keys is not None and len(keys) != batch:
            raise ContractError(f"keys: expected {batch} names, one per image, got {len(keys)}")
        if prior is not None:
            prior = check_map(prior, like=image, values=self.check_values, what="prior").to(self.device)
        size = self.micro_batch or batch
        chunks = [
            self._run(
                image[s : s + size],
                None if keys is None else list(keys[s : s + size]),
                None if prior is None else prior[s : s + size],
                return_steps,
            )
            for s in range(0, batch, size)
        ]
        if len(chunks) == 1:
            out = chunks[0]
        else:
            out = ChainOutput(
                torch.cat([c.saliency for c in chunks]),
                {n: torch.cat([c.steps[n] for c in chunks]) for n in chunks[0].steps},
            )
        return out if return_steps else out.saliency

    def _run(self, image: Tensor, keys: list[str] | None, prior: Tensor | None, keep: bool) -> ChainOutput:
        saliency = prior
        produced: dict[str, Tensor] = {}
        for i, (name, step) in enumerate(self.steps.items()):
            if i == 0:
                saliency = self._call(name, step, image, keys) if prior is None else prior
            else:
                saliency = self._call(name, step, image, saliency)
            if keep:
                produced[name] = saliency
        return ChainOutput(saliency, produced)

    def _call(self, name: str, step: Component, image: Tensor, second: Any) -> Tensor:
        target = image.device
        if step.device_bound is not None and torch.device(step.device_bound) != target:
            image = image.to(step.device_bound)
            second = second.to(step.device_bound) if isinstance(second, Tensor) else second
        try:
            out = step(image, second)
        except SalplugError:
            raise
        except Exception as err:
            raise StepError(name, step.kind, step.name, err) from err
        what = f"output of step {name!r} ({step.kind} {step.name!r})"
        return check_map(out, like=image, values=self.check_values, what=what).to(target)
