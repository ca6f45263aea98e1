"""Atomic file writes: a reader (or a crash) never sees a half-written output file."""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from pathlib import Path
from typing import IO, Iterator

from .errors import OutputError


_UMASK_LOCK = threading.Lock()


def current_umask() -> int:
    """The process's umask, read without changing it where Linux allows (/proc), else by setting
    and restoring it under a lock."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
        return mask


def plain_mode(fd: int) -> None:
    """Give a file made by ``tempfile.mkstemp`` (always 0600) the mode a plain ``open()`` would:
    0666 less the umask, so a web server running as another user can serve a gallery."""
    os.fchmod(fd, 0o666 & ~current_umask())


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", durable: bool = True, **kwargs) -> Iterator[IO]:
    """Open a temporary file next to ``path``; it replaces ``path`` only if the block succeeds.

    ``durable`` also fsyncs before the rename (survives power loss, costs a few ms per file).
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    except OSError as err:  # read-only, no permission, no space for even an empty file
        raise OutputError.of(err, path) from err
    try:
        plain_mode(fd)
        with os.fdopen(fd, mode, **kwargs) as handle:
            yield handle
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(err, OSError):  # a full disk, mostly: one line that names the file
            raise OutputError.of(err, path) from err
        raise


def overwrite_in_place(path: str | os.PathLike, text: str) -> None:
    """Rewrite an existing file's content where it is: the last resort on a full disk, where the
    temporary copy of an atomic write finds no room but the file's own blocks are freed first."""
    try:
        with open(path, "r+", encoding="utf-8", newline="") as handle:
            handle.truncate(0)
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as err:
        raise OutputError.of(err, path) from err


def atomic_write_bytes(path: str | os.PathLike, data: bytes, durable: bool = True) -> None:
    with atomic_open(path, "wb", durable=durable) as handle:
        handle.write(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_open(path, "w", encoding="utf-8", newline="") as handle:
        handle.write(text)
