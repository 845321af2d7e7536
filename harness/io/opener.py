"""Transports by port scheme: the registry and ``open_port``."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from harness.config.ports import PortRef
from harness.errors import ConfigError

if TYPE_CHECKING:
    from harness.io.transport import Transport

Opener = Callable[..., "Transport"]  # (ref, baudrate, *, reconnect_timeout, write_chunk, write_gap_ms)
TRANSPORTS: dict[str, Opener] = {}


def register(*schemes: str) -> Callable[[Opener], Opener]:
    def add(opener: Opener) -> Opener:
        for scheme in schemes:
            TRANSPORTS[scheme] = opener
        return opener

    return add


def open_port(ref: PortRef, baudrate: int = 115200, *, reconnect_timeout: float = 15.0, **pacing) -> Transport:
    """Open the transport for a concrete port (lab: and labgrid: references are resolved first)."""
    opener = TRANSPORTS.get(ref.scheme)
    if opener is None:
        raise ConfigError(f"port {ref.text!r} is a {ref.scheme} reference: resolve it to a port before opening")
    return opener(ref, baudrate, reconnect_timeout=reconnect_timeout, **pacing)
