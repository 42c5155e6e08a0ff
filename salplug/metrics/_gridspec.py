"""The grid file of ``salplug eval --grid``: datasets × methods in one YAML (or JSON) document.

As PySODEvalToolkit's dataset and method configs, in one file: each dataset names its
image and mask folders (or one folder holding ``images/`` and ``masks/``), and each method
one folder of maps per dataset, as a pattern with ``{dataset}`` or a mapping. Relative
paths are taken from the grid file's folder, so the file travels with its results.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from salplug.errors import SalplugError
from salplug.pipeline._schema import SCHEMA_DIALECT
from salplug.pipeline._spec import read_document

Name = Annotated[str, StringConstraints(min_length=1, pattern=r"^[^=\s][^=]*$")]
"""A dataset or method name as tables print it: no ``=``, not starting with a space."""


class GridError(SalplugError, ValueError):
    """A grid file that cannot be used; the message names the file and the field."""


class DatasetSpec(BaseModel):
    """One dataset: its photos and masks, paired by file stem."""

    model_config = ConfigDict(extra="forbid")

    images: str = Field(description="Folder of photos.")
    masks: str = Field(description="Folder of ground-truth masks, one per photo, same stem.")
    map_prefix: str = Field(default="", description="Text before the image stem in every method's map names.")
    map_suffix: str = Field(default="", description="Text after the image stem (before the extension) in map names.")
    subset: str | None = Field(default=None, description="Text file of image stems to score, one per line.")


class GridSpec(BaseModel):
    """salplug evaluation grid: datasets as column groups, methods as rows."""

    model_config = ConfigDict(extra="forbid", title="salplug evaluation grid")

    datasets: dict[Name, str | DatasetSpec] = Field(
        min_length=1,
        description="Dataset name → a folder holding images/ and masks/, or its folders spelled out.",
    )
    methods: dict[Name, str | dict[Name, str]] = Field(
        default_factory=dict,
        description="Method name → folder of maps per dataset: a pattern with {dataset} "
                    "(results/mine/{dataset}), or dataset name → folder.",
    )
    chains: dict[Name, str] = Field(
        default_factory=dict,
        description="Method name → a chain (a name from salplug list chain, or a spec file) run on the photos.",
    )


def grid_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of grid files, for editors to complete and check them."""
    return {"$schema": SCHEMA_DIALECT, **GridSpec.model_json_schema()}


def load_grid(path: str | Path) -> GridSpec:
    """The grid file at `path`, checked; relative folders made relative to the file's own folder."""
    path = Path(path)
    data = read_document(path, "grid file", GridError)
    try:
        spec = GridSpec.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "(top level)"
        raise GridError(f"grid file {path}: field '{where}': {first['msg']}") from None
    base = path.parent

    def near(text: str) -> str:
        return str(base / Path(text).expanduser())

    datasets = {name: near(d) if isinstance(d, str) else d.model_copy(update={
        "images": near(d.images), "masks": near(d.masks), "subset": near(d.subset) if d.subset else None})
        for name, d in spec.datasets.items()}
    methods = {name: near(m) if isinstance(m, str) else {d: near(f) for d, f in m.items()}
               for name, m in spec.methods.items()}
    chains = {name: near(c) if Path(c).suffix in (".yaml", ".yml", ".json") else c for name, c in spec.chains.items()}
    for name, folders in methods.items():
        unknown = sorted(set(folders) - set(datasets)) if isinstance(folders, dict) else []
        if unknown:
            raise GridError(f"grid file {path}: method {name!r}: expected folders for the datasets "
                            f"{sorted(datasets)}, got one for {unknown[0]!r}")
    return GridSpec(datasets=datasets, methods=methods, chains=chains)
