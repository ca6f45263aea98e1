"""Errors a user sees.

Every failure the user can cause (bad path, unreadable image, missing weights, bad option) is
raised as a :class:`VidfiqaError` whose message is one self-contained line.  The CLI prints that
line and exits non-zero; it never shows a traceback for these.
"""

from __future__ import annotations


class VidfiqaError(Exception):
    """A user-facing error: ``str(err)`` is one line that says what is wrong and what to do."""

    def __init__(self, message: str):
        # Keep the message on one line even when it embeds paths or library messages.
        super().__init__(" ".join(str(message).split()))


class OutputError(VidfiqaError):
    """An output cannot be written (disk full, read-only, no permission); ``path`` says which."""

    def __init__(self, message: str, path=None):
        super().__init__(message)
        self.path = path

    @classmethod
    def of(cls, err: OSError, path) -> "OutputError":
        """``cannot write PATH: reason`` from the OSError that stopped the write."""
        where = err.filename if err.filename is not None and not str(err.filename).endswith(".part") else path
        return cls(f"cannot write {where}: {err.strerror or err}", path=where)


class InputError(VidfiqaError):
    """An input (path, image, video) cannot be used; ``path`` says which, when known."""

    def __init__(self, message: str, path=None):
        super().__init__(message)
        self.path = path


class WeightsError(VidfiqaError):
    """Model weights are missing, or a file is not the one expected."""


class ConfigError(VidfiqaError):
    """An option or configuration value is invalid."""
