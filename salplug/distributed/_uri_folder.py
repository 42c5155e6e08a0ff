"""A folder of maps on a pyarrow filesystem (``s3://``, ``gs://``, ``hdfs://``, ``file://``) for `--engine ray`.

Every file goes to a temporary name and is then moved into place, so a reader never sees
half a map; on object stores, where a move is a copy, the copy appears whole as well.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path

from salplug.data._io import PNG_END, TEMPORARY_NAME, encode_png, to_uint8
from salplug.pipeline._manifest import LocalFolder


def is_uri(target: object) -> bool:
    """True for ``scheme://...`` outputs, which go through pyarrow instead of the local file system."""
    return "://" in str(target)


class UriFolder:
    """The folder at `uri`, through the pyarrow filesystem its scheme names.

    It has `salplug.pipeline._manifest.LocalFolder`'s methods, so the runner plans and writes
    through either.
    """

    def __init__(self, uri: str):
        from pyarrow import fs

        self.uri = uri.rstrip("/")
        self._fs_module = fs
        try:
            self.fs, self.root = fs.FileSystem.from_uri(self.uri)
        except (ValueError, OSError) as err:
            from salplug.distributed._ray_setup import EngineError

            raise EngineError(f"-o {uri}: expected a folder URI pyarrow can open, got {err}") from None
        self.local_root = Path(self.root) if isinstance(self.fs, fs.LocalFileSystem) else None
        """The folder's path for ``file://``, so inputs are never walked into it; None on other filesystems."""

    def _path(self, relative: str) -> str:
        return f"{self.root}/{relative}"

    def location(self, relative: str) -> str:
        return f"{self.uri}/{relative}"

    def complete(self, relative: str) -> bool:
        """A map that is there and ends as a PNG ends: a file cut short is not a finished map."""
        info = self.fs.get_file_info(self._path(relative))
        if info.type != self._fs_module.FileType.File or (info.size or 0) < len(PNG_END):
            return False
        with self.fs.open_input_file(self._path(relative)) as stream:
            stream.seek(info.size - len(PNG_END))
            return stream.read(len(PNG_END)) == PNG_END

    def tidy(self) -> None:
        """Nothing to tidy: a temporary is moved into place or never seen by a reader."""

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """On ``file://``, the local folder's lock; object stores have none, so runs there must not overlap."""
        if self.local_root is not None:
            with LocalFolder(self.local_root).lock():
                yield
        else:
            yield

    def write_map(self, relative: str, saliency) -> str:
        return self.write_bytes(relative, encode_png(to_uint8(saliency), relative))

    def mtime(self, relative: str) -> float | None:
        """Modification time of a file in seconds, or None when it is absent."""
        info = self.fs.get_file_info(self._path(relative))
        if info.type != self._fs_module.FileType.File:
            return None
        return info.mtime.timestamp() if info.mtime is not None else 0.0

    def exists(self, relative: str) -> bool:
        return self.mtime(relative) is not None

    def read_text(self, relative: str) -> str | None:
        if not self.exists(relative):
            return None
        with self.fs.open_input_stream(self._path(relative)) as stream:
            return stream.read().decode("utf-8")

    def count(self, suffix: str) -> int:
        """Files below the folder whose name ends with `suffix`; 0 when the folder does not exist."""
        selector = self._fs_module.FileSelector(self.root, recursive=True, allow_not_found=True)
        return sum(1 for info in self.fs.get_file_info(selector) if info.path.endswith(suffix))

    def write_bytes(self, relative: str, data: bytes) -> str:
        """Write `data` to ``URI/relative`` through a temporary name; returns the file's URI."""
        path = self._path(relative)
        parent, name = path.rsplit("/", 1)
        self.fs.create_dir(parent, recursive=True)
        temporary = f"{parent}/.{name[:TEMPORARY_NAME]}.{uuid.uuid4().hex}.tmp"
        with self.fs.open_output_stream(temporary) as stream:
            stream.write(data)
        self.fs.move(temporary, path)
        return f"{self.uri}/{relative}"
