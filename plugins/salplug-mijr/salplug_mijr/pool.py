"""The fitted pool: analysed images, their scene descriptors, the feature projection and the pair filter.

Written to one torch file (format `salplug-mijr-pool/1`) of tensors, strings and numbers,
read back with torch's weights-only loader, so a fitted refiner is reused without refitting.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from salplug.components import read_payload, write_payload

from .analysis import Record
from .filter import PairFilter

FORMAT = "salplug-mijr-pool/1"


@dataclass
class PoolImage:
    """One image offered to `MIJR.fit`: RGB H×W×3 and base map H×W in [0, 1], and a mask where one exists."""

    key: str
    image: np.ndarray
    saliency: np.ndarray
    mask: np.ndarray | None = None


@dataclass
class Projection:
    """PCA of raw instance features: x ↦ (x − mean) @ components."""

    mean: Tensor
    components: Tensor

    @classmethod
    def fit(cls, x: Tensor, dims: int) -> Projection:
        mean = x.double().mean(0)
        centred = x.double() - mean
        values, vectors = torch.linalg.eigh(centred.T @ centred / len(x))
        return cls(mean.float(), vectors[:, values.argsort(descending=True)[:dims]].float())

    def __call__(self, x: Tensor) -> Tensor:
        return (x - self.mean) @ self.components

    def project(self, record: Record) -> Record:
        """The record with both kinds of instance features projected (in place)."""
        record.features = self(record.features)
        record.proposal_features = self(record.proposal_features)
        return record


class StoredRecords(Sequence[Record]):
    """A loaded pool's records, kept in their stored form (fp16 features, uint8 grey, int16 labels) and
    decoded on access: a target touches its few retrieved images, and 5,000 decoded records would
    take about four times the memory (6 GB instead of 2.3)."""

    def __init__(self, states: list[dict]):
        self.states = states

    def __len__(self) -> int:
        return len(self.states)

    def __getitem__(self, index: int) -> Record:
        return Record.from_state(self.states[index])


@dataclass
class Pool:
    records: Sequence[Record]
    descriptors: Tensor
    projection: Projection
    filter: PairFilter
    analysis: dict[str, Any]
    card: dict[str, Any] = field(default_factory=dict)

    def save(self, path: str | Path) -> Path:
        """Atomically write the pool file."""
        return write_payload({
            "format": FORMAT, "analysis": self.analysis, "card": self.card,
            "records": self.records.states if isinstance(self.records, StoredRecords) else [r.to_state() for r in self.records],
            "descriptors": self.descriptors,
            "projection": {"mean": self.projection.mean, "components": self.projection.components},
            "filter": {"features": self.filter.mean.numel(), "state": self.filter.state_dict()},
        }, path)

    @classmethod
    def load(cls, path: str | Path) -> Pool:
        payload = read_payload(
            path, FORMAT, what="refiner 'mijr': pool index", missing_hint=" (fit one: salplug train mijr)",
            expected=f"refiner 'mijr': expected a {FORMAT} file at {path} (written by MIJR.save_index)",
        )
        pair_filter = PairFilter(payload["filter"]["features"])
        pair_filter.load_state_dict(payload["filter"]["state"])
        pair_filter.eval()
        return cls(
            records=StoredRecords(payload["records"]), descriptors=payload["descriptors"],
            projection=Projection(**payload["projection"]), filter=pair_filter, analysis=payload["analysis"],
            card=payload["card"],
        )
