"""The hooks a salplug plugin may implement: the contract third parties read.

A plugin is a module (or object) named in the ``salplug`` entry-point group whose
functions are marked with `salplug.hookimpl`. Each registration hook receives a
`register` callable for one component kind and calls it once per component class::

    import salplug

    @salplug.hookimpl
    def salplug_register_refiners(register):
        register(MyRefiner)

Rules every hook shares:

* Register classes, not instances: weights load only when a chain builds the component.
* Names are unique per kind across all installed distributions. A second registration of
  a taken name is reported against the second plugin, and building that name then fails
  with an error naming both distributions, so nothing is ever silently overwritten.
* The order in which plugins' hooks run decides nothing: chains order the steps.
* A hook that raises marks its plugin as failed (shown by ``salplug plugins``); the other
  plugins still load.
* Do not give hook implementations default arguments: pluggy does not pass them.
"""

from __future__ import annotations

import pluggy

from salplug.host._chains import ChainRegistrar
from salplug.host._commands import CommandRegistrar
from salplug.host._registry import Registrar

hookspec = pluggy.HookspecMarker("salplug")


@hookspec
def salplug_register_backbones(register: Registrar) -> None:
    """Register `salplug.Backbone` subclasses: image encoders returning feature levels.

    A backbone takes contract images (``B×3×H×W`` in [0, 1]), normalises them the way its
    weights expect, and returns a list of feature maps from shallow to deep, declaring
    their `channels` and `strides`.
    """


@hookspec
def salplug_register_priors(register: Registrar) -> None:
    """Register `salplug.PriorProvider` subclasses: the first step of every chain.

    ``forward(image, keys=None) -> saliency`` maps ``B×3×H×W`` images to ``B×1×H×W``
    probabilities of the same height and width. `keys` name the images (file stems in a
    directory run) for priors that read maps instead of computing them.
    """


@hookspec
def salplug_register_refiners(register: Registrar) -> None:
    """Register `salplug.Refiner` subclasses: methods that improve a map using its image.

    ``forward(image, saliency) -> saliency``, all ``B×…×H×W`` with the output in [0, 1]
    and the input's height and width. A refiner that keeps state across images sets
    ``stateful = True``.
    """


@hookspec
def salplug_register_postprocessors(register: Registrar) -> None:
    """Register `salplug.PostProcessor` subclasses: fixed clean-up steps (CRF, filters).

    Same call as a refiner. A step implemented only for the CPU sets
    ``device_bound = "cpu"``; the chain moves tensors at its boundary.
    """


@hookspec
def salplug_register_metrics(register: Registrar) -> None:
    """Register `salplug.Metric` subclasses: dataset scores of maps against masks.

    ``update(saliency, mask) -> {score: per-image tensor}`` accumulates a batch
    (saliency ``B×1×H×W`` in [0, 1], mask ``B×1×H×W`` bool); ``compute() -> {score: float}``
    aggregates everything since ``reset()``; ``curves()`` may return dataset-averaged threshold
    curves (``precision``, ``recall``, ``fmeasure``) that ``salplug eval`` plots.
    """


@hookspec
def salplug_register_trainers(register: Registrar) -> None:
    """Register `salplug.Trainer` subclasses: training jobs for trainable components.

    A trainer's `Config` holds everything the job needs (data folders, schedule, output
    path); ``run() -> Path`` trains and writes a checkpoint that the component loads
    with ``load_weights``. ``salplug train NAME --set field=value ...`` runs one.
    """


@hookspec
def salplug_register_chains(register: ChainRegistrar) -> None:
    """Register the chain specs a plugin ships, by name: ``salplug run --chain NAME``.

    ``register(name, spec, summary, scores="", default=False)``: `spec` is the path of a
    YAML or JSON chain spec inside the plugin's package (so it installs with it), `summary`
    one line on what the chain is for, `scores` its figures on a named report set as one
    line. `default=True` makes it the chain ``salplug run`` uses without ``--chain``; only
    one installed chain may claim that. A name registered by two distributions is shown as
    a conflict by ``salplug plugins``, and the first registration stays.
    """


@hookspec
def salplug_register_commands(register: CommandRegistrar) -> None:
    """Register a plugin's tools as `salplug.host.Command` objects: ``salplug PLUGIN TOOL``.

    Each command has a `name` (unique within the plugin), a help line, a function adding
    argparse arguments and a function that runs it with the parsed arguments and returns the
    exit code (None means 0). The tools appear under the plugin's name (its entry-point name),
    are listed by ``salplug plugins`` and take ``--help``. Raise a `salplug.SalplugError` for a
    failure the user can fix: the command line prints it as one line and exits with 2. A
    plugin named like a core command (``run``, ``eval``, ...) has its tools left out and the
    clash shown as its error. `Command.main(argv)` runs a tool from Python.
    """
