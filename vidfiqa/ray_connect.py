"""Joining or starting the Ray cluster that `rescore --ray` and `watch --ray` run on."""

from __future__ import annotations

import socket
from typing import Any

from .errors import ConfigError


def connect_ray(address: str, num_cpus: int | None = None) -> Any:
    """The ``ray`` module, connected.  ``address``: ``"local"`` starts a Ray instance in this
    machine (``num_cpus`` of its CPUs), ``"auto"`` joins the cluster this machine belongs to
    (``ray start`` / RAY_ADDRESS) or, when there is none, starts a local one; anything else is a
    cluster address (``ray://head:10001``, ``HOST:6379``).  A failure is one line (ConfigError)."""
    try:
        import ray
    except ImportError:
        raise ConfigError("--ray needs Ray: pip install -e \".[ray]\"") from None
    if not ray.is_initialized():
        kwargs = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
        try:
            if address == "local":
                ray.init(num_cpus=num_cpus, **kwargs)
            elif address == "auto":
                try:
                    ray.init(address="auto", **kwargs)
                except ConnectionError:  # no cluster to join on this machine: run one here
                    ray.init(num_cpus=num_cpus, **kwargs)
            else:
                _reachable(address)
                ray.init(address=address, **kwargs)
        except (ConnectionError, RuntimeError, ValueError) as err:
            raise ConfigError(f"--ray {address}: cannot connect to a Ray cluster ({' '.join(str(err).split())[:200]})") from None
    return ray


PROBE_TIMEOUT_S = 5.0


def _reachable(address: str) -> None:
    """Refuse at once an address where nothing listens: Ray itself retries an unreachable head
    for minutes, printing warnings."""
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"--ray {address}: expected auto, local, HOST:PORT or ray://HOST:PORT")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=PROBE_TIMEOUT_S).close()
    except OSError as err:
        raise ConfigError(f"--ray {address}: no Ray head answers there ({err.strerror or err})") from None
