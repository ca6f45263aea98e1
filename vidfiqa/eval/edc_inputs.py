"""Files an EDC evaluation reads besides identities.csv: a pairs list and precomputed scores.

* pairs CSV: columns ``path_a, path_b, genuine`` (genuine: 1/0, true/false, yes/no).
* quality CSV: columns ``path, quality``, one row per photo; an empty, NaN or absent quality
  means the method found no face in that photo.

Relative paths are tried against the CSV's folder and its parent (the two layouts of
identities.csv in ../shared/data), then any extra base folders the caller gives, then the
current directory.  Errors are :class:`~vidfiqa.errors.InputError` with a one-line message.
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ..errors import InputError
from .verification import Pairs

_TRUE = {"1", "true", "yes", "y", "genuine", "mated", "same"}
_FALSE = {"0", "false", "no", "n", "impostor", "nonmated", "non-mated", "different"}


def _bases(csv_path: Path, extra: Iterable[Path]) -> list[Path]:
    return [csv_path.parent, csv_path.parent.parent, *extra, Path.cwd()]


def resolve(rel: str, bases: Sequence[Path]) -> Path | None:
    """The first existing file ``rel`` names, absolute or under one of ``bases``, resolved."""
    p = Path(rel)
    for candidate in [p] if p.is_absolute() else [b / p for b in bases]:
        if candidate.is_file():
            return candidate.resolve()
    return None


def _reader(csv_path: Path, needed: set[str], what: str):
    if not csv_path.is_file():
        raise InputError(f"{csv_path}: no such {what} file", path=csv_path)
    handle = open(csv_path, newline="", encoding="utf-8")
    reader = csv.DictReader(handle)
    if not reader.fieldnames or not needed <= {f.strip() for f in reader.fieldnames}:
        handle.close()
        raise InputError(f"{csv_path}: a {what} file needs columns {', '.join(sorted(needed))}; has {reader.fieldnames}", path=csv_path)
    reader.fieldnames = [f.strip() for f in reader.fieldnames]
    return handle, reader


@dataclass
class PairList:
    """Photos named by a pairs file and the pairs as indices into them."""

    paths: list[Path]
    pairs: Pairs
    missing: list[str] = field(default_factory=list)  # paths in the file that do not exist
    skipped_rows: int = 0  # pairs dropped because one of their photos is missing


def read_pairs_csv(csv_path: str | os.PathLike, extra_bases: Iterable[Path] = ()) -> PairList:
    csv_path = Path(csv_path)
    bases = _bases(csv_path, extra_bases)
    index: dict[Path, int] = {}
    first, second, genuine, missing, skipped = [], [], [], [], 0
    handle, reader = _reader(csv_path, {"path_a", "path_b", "genuine"}, "pairs")
    with handle:
        for line, row in enumerate(reader, start=2):
            flag = (row.get("genuine") or "").strip().lower()
            if flag not in _TRUE | _FALSE:
                raise InputError(f"{csv_path}:{line}: genuine must be 1/0, true/false or yes/no; got {row.get('genuine')!r}", path=csv_path)
            ends = []
            for key in ("path_a", "path_b"):
                rel = (row.get(key) or "").strip()
                found = resolve(rel, bases) if rel else None
                if found is None:
                    missing.append(rel)
                    break
                ends.append(index.setdefault(found, len(index)))
            if len(ends) < 2:
                skipped += 1
                continue
            if ends[0] == ends[1]:
                raise InputError(f"{csv_path}:{line}: a photo compared with itself ({row['path_a']})", path=csv_path)
            first.append(ends[0])
            second.append(ends[1])
            genuine.append(flag in _TRUE)
    if not first:
        raise InputError(f"{csv_path}: no usable pairs ({skipped} rows name missing files, e.g. {missing[:1]})", path=csv_path)
    pairs = Pairs(first=np.asarray(first, np.int64), second=np.asarray(second, np.int64), genuine=np.asarray(genuine, bool))
    return PairList(paths=list(index), pairs=pairs, missing=sorted(set(missing)), skipped_rows=skipped)


def read_quality_csv(csv_path: str | os.PathLike, photos: Sequence[Path], extra_bases: Iterable[Path] = ()) -> np.ndarray:
    """Per-photo quality in the order of ``photos``; NaN where the file gives none.

    Raises when no row matches any photo (almost always wrong paths, not "no faces at all").
    """
    csv_path = Path(csv_path)
    bases = _bases(csv_path, extra_bases)
    where = {Path(p).resolve(): i for i, p in enumerate(photos)}
    out = np.full(len(photos), np.nan, np.float64)
    matched = 0
    handle, reader = _reader(csv_path, {"path", "quality"}, "quality score")
    with handle:
        for line, row in enumerate(reader, start=2):
            found = resolve((row.get("path") or "").strip(), bases)
            if found is None or found not in where:
                continue
            matched += 1
            text = (row.get("quality") or "").strip()
            try:
                value = float(text) if text else math.nan
            except ValueError:
                raise InputError(f"{csv_path}:{line}: quality must be a number or empty; got {text!r}", path=csv_path) from None
            if math.isinf(value):
                raise InputError(f"{csv_path}:{line}: quality is infinite", path=csv_path)
            out[where[found]] = value
    if matched == 0:
        raise InputError(f"{csv_path}: none of its paths matches a photo being evaluated (paths are tried relative to the CSV, its parent and the current folder)", path=csv_path)
    return out
