"""Identity-labelled photo sets (``identities.csv`` with at least ``path`` and ``identity`` columns).

Paths in such a CSV are relative to the folder holding the CSV or to its parent (both layouts
occur in ../shared/data); rows whose file is missing are counted and reported, not fatal.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import InputError


@dataclass
class IdentitySet:
    root: Path
    paths: list[Path]
    identities: list[str]
    missing: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def labels(self) -> np.ndarray:
        """Integer identity label per photo."""
        _, inverse = np.unique(np.asarray(self.identities), return_inverse=True)
        return inverse.astype(np.int64)

    def subset(self, index) -> "IdentitySet":
        index = np.asarray(index)
        return IdentitySet(self.root, [self.paths[i] for i in index], [self.identities[i] for i in index], list(self.missing))


def read_identity_csv(csv_path: str | os.PathLike) -> IdentitySet:
    csv_path = Path(csv_path)
    if csv_path.is_dir():
        csv_path = csv_path / "identities.csv"
    if not csv_path.is_file():
        raise InputError(f"{csv_path}: no such identities CSV", path=csv_path)
    root = csv_path.parent
    paths, identities, missing = [], [], []
    with open(csv_path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or not {"path", "identity"} <= set(reader.fieldnames):
            raise InputError(f"{csv_path}: needs 'path' and 'identity' columns, has {reader.fieldnames}", path=csv_path)
        for row in reader:
            rel = row["path"]
            for base in (root, root.parent):
                if (base / rel).is_file():
                    paths.append(base / rel)
                    identities.append(row["identity"])
                    break
            else:
                missing.append(rel)
    return IdentitySet(root=root, paths=paths, identities=identities, missing=missing)
