"""The manifest beside a run's maps: which chain, with which options and versions, wrote them.

`salplug run` skips maps that exist, so a re-run into a folder written by another chain
would silently keep the old maps. The manifest (``salplug-run.json``) records the chain
spec with every option, the package versions and the sha256 of every weights file the chain
read (encoder weights resolved through ``$SALPLUG_WEIGHTS_DIR`` can differ between machines
under one spec); a re-run with a different chain is refused unless it overwrites, other
versions or weights are warned about, and a folder of maps without a manifest is not trusted.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import importlib.metadata
import json
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from salplug.pipeline._chain import Chain
from salplug.errors import SalplugError
from salplug.data._io import atomic_write, png_complete, remove_stale_temporaries, write_map

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


def weights(chain: Chain) -> dict[str, str | None]:
    """Every weights file the chain's steps read, path to sha256 (None: a download with no file)."""
    return dict(sorted((path, digest) for step in chain.named_steps.values()
                       for path, digest in step.weight_files.items()))


def manifest(chain: Chain, *, save_steps: bool) -> dict[str, Any]:
    return {"format": FORMAT, "chain": chain.to_spec().model_dump(mode="json"), "save_steps": save_steps,
            "versions": versions(chain), "weights": weights(chain)}


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
    before, after = old.get("weights"), now["weights"]
    if isinstance(before, dict) and sorted(map(str, before.values())) != sorted(map(str, after.values())):
        gone = [f"{path} ({digest})" for path, digest in before.items() if digest not in after.values()]
        added = [f"{path} ({digest})" for path, digest in after.items() if digest not in before.values()]
        warnings.warn(f"{where}: maps there were written with other weights files (there: {', '.join(gone) or 'none'}; "
                      f"now: {', '.join(added) or 'none'}); existing maps are kept, use --overwrite to rewrite them",
                      stacklevel=3)
    return now


NO_LOCKS = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS}
"""What `flock` answers on a file system without locks."""


class OutputFolderError(SalplugError, ValueError):
    """An output folder a run cannot write: another run holds it, or it is a file."""


class LocalFolder:
    """An output folder on this machine's file system, as the runner sees one.

    ``salplug.distributed`` has the same methods for folders on pyarrow filesystems, so both
    engines plan and write through one path.
    """

    LOCK = ".salplug-run.lock"
    """Hidden, so it is never read as a photo; it stays after a run (removing it would race a waiting run)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.uri = str(self.path)
        self.local_root: Path | None = self.path

    def location(self, relative: str) -> Path:
        return self.path / relative

    def mtime(self, relative: str) -> float | None:
        try:
            return (self.path / relative).stat().st_mtime
        except OSError:
            return None

    def complete(self, relative: str) -> bool:
        """A map that is there and whole: a file cut short is not a finished map."""
        return png_complete(self.path / relative)

    def read_text(self, relative: str) -> str | None:
        path = self.path / relative
        if not path.is_file():
            return None
        try:
            return path.read_text(encoding="utf-8")
        except (OSError, ValueError) as err:
            raise ManifestError(f"{path} is not a readable run manifest ({err}); "
                                "use --overwrite to start the folder anew") from None

    def count(self, suffix: str) -> int:
        return sum(1 for _ in self.path.rglob(f"*{suffix}")) if self.path.is_dir() else 0

    def write_bytes(self, relative: str, data: bytes) -> Path:
        path = self.path / relative
        with atomic_write(path) as tmp:
            tmp.write_bytes(data)
        return path

    def write_map(self, relative: str, saliency: Tensor) -> Path:
        return write_map(self.path / relative, saliency)

    def tidy(self) -> None:
        """Delete temporaries a killed run left behind."""
        remove_stale_temporaries(self.path)

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the folder for one run: a second run into it is refused while this one writes.

        Two chains writing one folder at once would mix their maps, and both would pass the
        manifest check, since neither has written its manifest yet. The lock is released when
        the run ends, or when its process dies. On a file system that has no locks (some network
        and FUSE mounts) the run goes on with a warning, since refusing would stop every run there.
        """
        if self.path.exists() and not self.path.is_dir():
            raise OutputFolderError(f"{self.path}: expected a folder for the maps, got a file")
        self.path.mkdir(parents=True, exist_ok=True)
        path = self.path / self.LOCK
        with open(path, "a+", encoding="utf-8") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                holder = handle.read().strip() or "unknown"
                raise OutputFolderError(f"{self.path} is in use by another salplug run (process {holder}, "
                                        f"holding {path}); expected a folder no run is writing: wait for that run "
                                        "to end, or write to another folder") from None
            except OSError as err:
                if err.errno not in NO_LOCKS:
                    raise
                warnings.warn(f"{self.path}: its file system cannot lock {self.LOCK} ({err.strerror}), so a second "
                              "run into this folder meanwhile would not be refused", stacklevel=3)
                yield
                return
            handle.seek(0)
            handle.truncate()
            handle.write(f"{os.getpid()}\n")
            handle.flush()
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def check_manifest(folder: LocalFolder, chain: Chain, *, save_steps: bool, overwrite: bool) -> dict[str, Any]:
    """This run's manifest, after refusing a folder written by another chain (unless `overwrite`).

    `folder` is a `LocalFolder` or a folder on a pyarrow filesystem with the same methods.
    """
    now = manifest(chain, save_steps=save_steps)
    if overwrite:
        return now
    old = folder.read_text(MANIFEST)
    return judge_manifest(now, old, folder.count(".png") if old is None else 0, where=folder.uri,
                          path=str(folder.location(MANIFEST)))


def write_manifest(folder: LocalFolder, record: dict[str, Any]) -> None:
    """Write the manifest `check_manifest` returned beside the maps."""
    folder.write_bytes(MANIFEST, (json.dumps(record, indent=2) + "\n").encode("utf-8"))
