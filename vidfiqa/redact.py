"""Keep camera credentials out of logs, manifests and events, and check URLs without showing them."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

_SECRET_PARAMS = re.compile(r"pass|pwd|token|secret|key|auth|sig", re.IGNORECASE)


def redact_url(url: str) -> str:
    """``rtsp://user:pw@cam/x?token=abc`` -> ``rtsp://***@cam/x?token=***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable url>"
    if not parts.scheme or not parts.netloc:
        return url
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rsplit("@", 1)[1]
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, "***" if _SECRET_PARAMS.search(k) else v) for k, v in pairs], safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def redact_text(text: str, url: str) -> str:
    """A message that may quote ``url`` (FFmpeg errors do), with the URL's secrets removed."""
    safe = redact_url(url)
    text = text.replace(url, safe)
    parts = urlsplit(url) if "://" in url else None
    if parts is not None and parts.password:
        text = text.replace(parts.password, "***")
    return text


def checked_url(url: str, schemes: tuple[str, ...], label: str):
    """``urlsplit(url)`` once it is known to have one of ``schemes``, a host and a port (if any)
    within 1-65535; else a one-line ConfigError starting with ``label``, which never holds the
    URL itself (it may carry a password).  Stream files, ``--webhook`` and ``--mqtt`` use it."""
    from .errors import ConfigError

    try:
        parts = urlsplit(url)
        port = parts.port  # parsed (and range-checked by Python) only when asked for
    except ValueError as err:
        raise ConfigError(f"{label}: not a valid URL ({err})") from None
    if parts.scheme.lower() not in schemes:
        raise ConfigError(f"{label}: scheme {parts.scheme!r} is not one of {', '.join(schemes)}")
    if not parts.hostname:
        raise ConfigError(f"{label}: has no host")
    if port is not None and not 1 <= port <= 65535:
        raise ConfigError(f"{label}: port {port} is not within 1-65535")
    return parts
