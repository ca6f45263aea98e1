"""The YouTube Faces verification protocol: 5,000 video pairs in 10 folds (2,500 same, 2,500 not).

The same protocol comes in two forms:

* the dataset's ``meta_data/meta_and_splits.mat``: ``video_names`` (3425x1 cell), ``video_labels``
  (1x3425) and ``Splits`` (500x3x10 of index1, index2, is_same);
* bob.db.youtube's export (../shared/data/ytf_protocol): ``Youtube_names.txt`` (one "Person/video"
  a line), ``Youtube_labels.mat`` (variable ``z``) and ``Youtube_splits.mat`` (variable ``m``).

Both index the names 1-based.  :func:`read_protocol` turns indices into "Person/video" keys, the
keys :attr:`vidfiqa.ytf.YtfVideo.key` gives, because a copy on disk usually holds only part of the
dataset: :meth:`YtfProtocol.evaluable` keeps the pairs whose two videos are present and says how
many that is, so a result on a subset is never mistaken for one on the full protocol.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.io

from ..errors import InputError

NAMES_TXT = "Youtube_names.txt"
LABELS_MAT = "Youtube_labels.mat"
SPLITS_MAT = "Youtube_splits.mat"
META_MAT = "meta_and_splits.mat"


@dataclass(frozen=True)
class YtfPair:
    fold: int
    key1: str
    key2: str
    same: bool


@dataclass(frozen=True)
class YtfProtocol:
    names: tuple[str, ...]
    labels: np.ndarray = field(compare=False)  # arrays do not compare to one bool; names and pairs decide
    pairs: tuple[YtfPair, ...]

    def evaluable(self, available: set[str]) -> tuple[list[YtfPair], dict]:
        """The pairs whose two videos are both in ``available``, and how many of each kind that is."""
        available = set(available)
        usable = [pair for pair in self.pairs if pair.key1 in available and pair.key2 in available]
        per_fold = [0] * (max((pair.fold for pair in self.pairs), default=-1) + 1)
        for pair in usable:
            per_fold[pair.fold] += 1
        same = sum(pair.same for pair in usable)
        counts = {"total": len(self.pairs), "evaluable": len(usable), "missing_video": len(self.pairs) - len(usable),
                  "per_fold": per_fold, "same": same, "different": len(usable) - same}
        return usable, counts


def read_protocol(path: str | os.PathLike) -> YtfProtocol:
    """Read the protocol from the bob.db.youtube folder or from a ``meta_and_splits.mat``.

    ``path`` may be the folder with the three bob files (or one of them), a folder holding
    ``meta_and_splits.mat`` (directly or in ``meta_data/``), or that file itself.
    """
    path = Path(path)
    if path.is_file() and path.name in (NAMES_TXT, LABELS_MAT, SPLITS_MAT):
        path = path.parent
    if path.is_dir():
        if (path / NAMES_TXT).is_file():
            return _read_bob_export(path)
        for candidate in (path / META_MAT, path / "meta_data" / META_MAT):
            if candidate.is_file():
                return _read_meta_mat(candidate)
        raise InputError(f"{path}: no YouTube Faces protocol here (expected {NAMES_TXT}, {LABELS_MAT} and "
                         f"{SPLITS_MAT}, or {META_MAT})", path=path)
    if path.is_file():
        return _read_meta_mat(path)
    raise InputError(f"{path}: no such file or folder", path=path)


def _read_bob_export(folder: Path) -> YtfProtocol:
    names_path = folder / NAMES_TXT
    try:
        names = [line.strip() for line in names_path.read_text(encoding="utf-8-sig").splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"{names_path}: cannot read ({err})", path=names_path) from None
    labels = _variable(folder / LABELS_MAT, "z")
    splits = _variable(folder / SPLITS_MAT, "m")
    return _build(names, labels, splits, folder)


def _read_meta_mat(path: Path) -> YtfProtocol:
    mat = _loadmat(path)
    names = _cell_strings(_take(mat, "video_names", path), path)
    return _build(names, _take(mat, "video_labels", path), _take(mat, "Splits", path), path)


def _loadmat(path: Path) -> dict:
    if not path.is_file():
        raise InputError(f"{path}: no such file", path=path)
    try:
        return scipy.io.loadmat(path)
    except NotImplementedError:  # scipy reads MATLAB v4-v7.2 only
        raise InputError(f"{path}: MATLAB v7.3 (HDF5) file; save it again with -v7", path=path) from None
    except (OSError, ValueError, TypeError) as err:
        raise InputError(f"{path}: not a readable MATLAB file ({err})", path=path) from None


def _variable(path: Path, name: str) -> np.ndarray:
    return _take(_loadmat(path), name, path)


def _take(mat: dict, name: str, path: Path) -> np.ndarray:
    if name not in mat:
        present = sorted(key for key in mat if not key.startswith("__"))
        raise InputError(f"{path}: no variable '{name}' (has {', '.join(present) or 'none'})", path=path)
    return np.asarray(mat[name])


def _cell_strings(value: np.ndarray, path: Path) -> list[str]:
    """Strings from a MATLAB cell array of strings (or a char matrix, which loadmat gives as strings)."""
    if value.dtype.kind == "U":
        return [str(item).strip() for item in value.ravel()]
    if value.dtype == object:
        return ["".join(np.asarray(item).ravel().astype(str)).strip() for item in value.ravel()]
    raise InputError(f"{path}: video_names holds {value.dtype} values, not strings", path=path)


def _build(names: list[str], labels: np.ndarray, splits: np.ndarray, source: Path) -> YtfProtocol:
    """Check that names, labels and splits fit together and turn indices into keys."""
    names = [name.replace("\\", "/") for name in names]
    if not names or any(not name for name in names):
        raise InputError(f"{source}: the video name list is empty or has empty names", path=source)
    if len(set(names)) != len(names):
        raise InputError(f"{source}: the video name list repeats names, so pair indices are ambiguous", path=source)
    labels = _integers(labels, "video labels", source).ravel()
    if labels.size != len(names):
        raise InputError(f"{source}: {labels.size} video labels for {len(names)} video names", path=source)
    labels.setflags(write=False)
    splits = _integers(splits, "splits", source)
    if splits.ndim != 3 or splits.shape[1] != 3:
        raise InputError(f"{source}: splits have shape {splits.shape}, expected (pairs, 3, folds) such as (500, 3, 10)",
                         path=source)
    indices, same = splits[:, :2, :], splits[:, 2, :]
    if indices.size and (indices.min() < 1 or indices.max() > len(names)):
        raise InputError(f"{source}: split indices run {indices.min()}..{indices.max()}, "
                         f"outside the 1..{len(names)} video names", path=source)
    if not np.isin(same, (0, 1)).all():
        raise InputError(f"{source}: the is_same column holds values other than 0 and 1", path=source)
    pairs = tuple(YtfPair(fold, names[row[0] - 1], names[row[1] - 1], bool(row[2]))
                  for fold in range(splits.shape[2]) for row in splits[:, :, fold].tolist())
    return YtfProtocol(tuple(names), labels, pairs)


def _integers(value: np.ndarray, what: str, source: Path) -> np.ndarray:
    """``value`` as int64; InputError when it is not numeric or holds fractions."""
    numeric = value.dtype.kind in "biuf"
    if not numeric or (value.dtype.kind == "f" and not np.all(np.isfinite(value) & (value == np.round(value)))):
        raise InputError(f"{source}: {what} are not whole numbers", path=source)
    return value.astype(np.int64)
