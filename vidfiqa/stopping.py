"""Stop signals: how a run ends when it is asked to, and why a second request waits.

timeout, docker, systemd and supervisors stop a process with SIGTERM, a closed terminal sends
SIGHUP and a user presses Ctrl-C (SIGINT): every one of them ends a command the way Ctrl-C does,
so that it keeps what it has done.  The first signal raises :class:`KeyboardInterrupt`; while the
command then writes its open tracks and its manifest, a second signal (a second Ctrl-C, a
supervisor sending SIGTERM twice) must not cut that short: it used to land inside the flush and
leave a manifest that said "complete" with tracks missing.  Only SIGKILL cuts it short.
"""

from __future__ import annotations

import signal
import sys
import threading
from contextlib import contextmanager
from typing import Any, Iterator

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def in_main_thread() -> bool:
    """Signal handlers can only be set from the main thread (a library caller may be elsewhere)."""
    return threading.current_thread() is threading.main_thread()


class StopRequest:
    """The process's stop signals, as one object: :meth:`install` makes the first one raise
    :class:`KeyboardInterrupt` and the later ones a note on stderr; :attr:`signum` is the first
    one's number (the exit status is 128 + it)."""

    def __init__(self) -> None:
        self.signum: int = int(signal.SIGINT)
        self.requested = False
        self._noted = False

    def install(self) -> None:
        for sig in STOP_SIGNALS:
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum: int, frame: Any) -> None:
        if self.requested:
            if not self._noted:
                self._noted = True
                print(f"vidfiqa: already stopping ({signal.Signals(signum).name}): writing what was found", file=sys.stderr, flush=True)
            return
        self.requested = True
        self.signum = signum
        raise KeyboardInterrupt

    @staticmethod
    def ignore_all() -> None:
        """Once the command is over and what it did is written, a stop signal that arrives while
        the process exits must not turn a clean exit into a kill: Python restores the default
        handlers while it shuts down."""
        for sig in STOP_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)


@contextmanager
def stops_deferred() -> Iterator[None]:
    """While the body runs (the last writes of a run), a stop signal is held back instead of
    landing inside it, then delivered again to the handler that was there before: with the CLI's
    :class:`StopRequest` a repeat is only a note, without it the caller sees its signal once the
    writes are done.  Outside the main thread it does nothing: signals only reach the main thread."""
    if not in_main_thread():
        yield
        return
    held: list[int] = []
    # None: a handler set outside Python, which cannot be put back; such a signal is left alone.
    previous = {sig: handler for sig in STOP_SIGNALS if (handler := signal.getsignal(sig)) is not None}

    def hold(signum: int, frame: Any) -> None:
        held.append(signum)

    for sig in previous:
        signal.signal(sig, hold)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if held:
        signal.raise_signal(held[0])
