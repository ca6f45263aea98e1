"""One run per output folder.

Two runs writing one folder mix their files: the second replaced the first's gallery while the
first went on writing, and the manifest then described one input while ``tracks/`` held the
other's images.  A run therefore holds an exclusive ``flock`` on the output folder itself (no lock
file to clutter it or to go stale): the kernel releases it when the process ends, however it
ends, so a run that was killed never blocks the next one.
"""

from __future__ import annotations

import errno
import fcntl
import os
import weakref
from pathlib import Path

from .errors import ConfigError, OutputError, VidfiqaError


class FolderInUse(VidfiqaError):
    """Another process holds the output folder (exit 2: the command is misused, not broken)."""


class FolderLock:
    """Held from construction until :meth:`release` (or the process ends).  ``what`` names the
    output in messages ("output", "watch output")."""

    def __init__(self, folder: str | Path, what: str = "output"):
        self.folder = Path(folder)
        if self.folder.exists() and not self.folder.is_dir():
            raise ConfigError(f"{what} {self.folder} exists and is not a folder")
        self.created = not self.folder.exists()
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.folder, os.O_RDONLY | os.O_DIRECTORY)
        except OSError as err:
            raise OutputError.of(err, self.folder) from err
        self._fd: int | None = fd
        self._closer = weakref.finalize(self, os.close, fd)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            if err.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                # A file system without flock (some network mounts): run unlocked, as before.
                return
            self.release()
            holder = _holder(self.folder)
            raise FolderInUse(f"{what} folder {self.folder} is in use by another vidfiqa run{f' (pid {holder})' if holder else ''}; "
                              f"give each run its own folder") from None

    def release(self) -> None:
        if self._fd is not None:
            self._fd = None
            self._closer()  # closing the descriptor drops the lock

    def abandon(self) -> None:
        """Release, and remove the folder if this lock made it and nothing was written into it
        (a run refused before its first output leaves no empty folder behind)."""
        self.release()
        if self.created:
            try:
                self.folder.rmdir()
            except OSError:
                pass  # not empty, or gone: leave it

    def __enter__(self) -> "FolderLock":
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _holder(folder: Path) -> int | None:
    """The pid holding a flock on ``folder``, from /proc/locks (Linux; None elsewhere)."""
    try:
        st = os.stat(folder)
        key = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
        with open("/proc/locks", encoding="ascii", errors="replace") as locks:
            for line in locks:
                parts = line.split()
                if len(parts) >= 6 and parts[1] == "FLOCK" and parts[5] == key:
                    return int(parts[4])
    except (OSError, ValueError):
        pass
    return None
