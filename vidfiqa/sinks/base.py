"""The one interface every output implements: a :class:`TrackSink` takes each finished track's
:class:`~vidfiqa.select.chain.TrackRecord` and writes or sends it somewhere.

The promises a sink may rely on (``docs/sinks.md``):

* it sees **every** record of its run or stream, in the order the tracks ended - accepted and
  rejected ones, with picks or without (``record.is_event`` says whether a record is an event of
  `vidfiqa watch`: an accepted track with at least one pick);
* ``emit`` is called from one thread per stream at a time, but several streams' threads may call
  one sink concurrently: a sink that keeps state guards it;
* under `vidfiqa run` an exception from ``emit`` stops the run (the gallery's disk is full: the
  run fails, saying so); under `vidfiqa watch` an ``OSError`` or ``OutputError`` makes the record
  wait and be offered again to this sink (and then to the sinks after it) with a growing delay,
  while the sinks before it are not asked again; any other exception is a bug;
* ``close`` is called once, after the last record; a sink that queues (webhook, MQTT) drains
  there within its own deadline.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from ..select.chain import TrackRecord


@runtime_checkable
class TrackSink(Protocol):
    """Where finished tracks go (see the module docstring for the promises)."""

    #: A short name for logs, metrics (``sink=`` label) and the watch summary.
    name: str

    def emit(self, record: "TrackRecord") -> None:
        """Take one finished track."""

    def close(self) -> None:
        """No record follows: flush, drain, release."""

    def summary(self) -> dict[str, Any] | None:
        """What the watch summary says of this sink (None: nothing)."""


def close_all(sinks: list[TrackSink]) -> None:
    """Close every sink, even when one of them fails to (the first failure is raised after)."""
    failure: BaseException | None = None
    for sink in sinks:
        try:
            sink.close()
        except Exception as err:  # every sink gets its close; the first error is reported
            failure = failure or err
    if failure is not None:
        raise failure
