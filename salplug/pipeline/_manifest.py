"""The manifest beside a run's maps: which chain, with which options and versions, wrote them.

`salplug run` skips maps that exist, so a re-run into a folder written by another chain
would silently keep the old maps. The manifest (``salplug-run.json``) records the chain
spec with every option and the package versions; a re-run with a different chain is
refused unless it overwrites, and a folder of maps without a manifest is not trusted.
"""

from __future__ import annotations

import importlib.metadata
import json
import warnings
from pathlib import Path
from typing import Any

import torch

from salplug.pipeline._chain import Chain
from salplug.errors import SalplugError
from salplug.data._io import atomic_write

MANIFEST = "salplug-run.json"
FORMAT = "salplug-run/1"


class ManifestError(SalplugError, ValueError):
    """An output folder that holds maps of another chain (or of an unknown one)."""


def versions(chain: Chain) -> dict[str, str]:
    """Versions of torch, salplug and the distribution of every step's component."""
    found = {"torch": torch.__version__}
    owners = importlib.metadata.packages_distributions()
    tops = [type(step).__module__.split(".")[0] for step in chain.named_steps.values()]
    for dist in ["salplug", *(owners.get(top, [top])[0] for top in tops)]:
        try:
            found[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            found[dist] = "unknown (not installed as a distribution)"
    return found


def manifest(chain: Chain, *, save_steps: bool) -> dict[str, Any]:
    return {"format": FORMAT, "chain": chain.to_spec().model_dump(mode="json"), "save_steps": save_steps,
            "versions": versions(chain)}


def _difference(old: dict[str, Any], new: dict[str, Any]) -> str:
    """The first way two chain specs differ, in words."""
    a, b = old.get("steps", []), new.get("steps", [])
    if [(s["name"], s["component"]) for s in a] != [(s["name"], s["component"]) for s in b]:
        return (f"steps {' -> '.join(s['name'] for s in a)} there, "
                f"{' -> '.join(s['name'] for s in b)} now")
    for was, now in zip(a, b):
        for field in sorted(set(was["config"]) | set(now["config"])):
            if was["config"].get(field) != now["config"].get(field):
                return f"step {was['name']!r} field {field!r}: {was['config'].get(field)!r} there, {now['config'].get(field)!r} now"
    return "the chain options differ"


def judge_manifest(now: dict[str, Any], old_text: str | None, maps: int, *, where: str, path: str) -> dict[str, Any]:
    """`now`, after refusing a folder whose manifest (`old_text`, None when absent) names another chain.

    `maps` counts the PNG files already in the folder; `where` and `path` name the folder
    and its manifest in messages. Shared by local folders and filesystem URIs.
    """
    if old_text is None:
        if maps:
            raise ManifestError(f"{where} holds {maps} maps but no {MANIFEST}, so which chain wrote them is unknown; "
                                "use --overwrite to replace them, or write to another folder")
        return now
    try:
        old = json.loads(old_text)
        spec = old["chain"]
    except (ValueError, KeyError, TypeError) as err:
        raise ManifestError(f"{path} is not a readable run manifest ({err}); use --overwrite to start the folder anew") from None
    if spec != now["chain"]:
        raise ManifestError(f"{where} holds maps of another chain ({_difference(spec, now['chain'])}; see {path}); "
                            "use --overwrite to replace them, or write to another folder")
    changed = {k: (old.get("versions", {}).get(k), v) for k, v in now["versions"].items()
               if old.get("versions", {}).get(k) != v}
    if changed:
        listing = ", ".join(f"{k} {a} -> {b}" for k, (a, b) in changed.items())
        warnings.warn(f"{where}: maps there were written with other package versions ({listing}); "
                      "existing maps are kept, use --overwrite to rewrite them", stacklevel=3)
    return now


def check_manifest(out_dir: Path, chain: Chain, *, save_steps: bool, overwrite: bool) -> dict[str, Any]:
    """This run's manifest, after refusing a folder written by another chain (unless `overwrite`)."""
    path = Path(out_dir) / MANIFEST
    now = manifest(chain, save_steps=save_steps)
    if overwrite or not Path(out_dir).is_dir():
        return now
    if not path.is_file():
        return judge_manifest(now, None, sum(1 for _ in Path(out_dir).rglob("*.png")), where=str(out_dir), path=str(path))
    try:
        old_text = path.read_text(encoding="utf-8")
    except (OSError, ValueError) as err:
        raise ManifestError(f"{path} is not a readable run manifest ({err}); use --overwrite to start the folder anew") from None
    return judge_manifest(now, old_text, 0, where=str(out_dir), path=str(path))


def write_manifest(out_dir: Path, record: dict[str, Any]) -> Path:
    """Write the manifest `check_manifest` returned beside the maps."""
    path = Path(out_dir) / MANIFEST
    with atomic_write(path) as tmp:
        tmp.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return path
