"""Port references: the one parser for every way a target or lab file names a serial port.

    /dev/ttyACM0                    a local device path ("device")
    rfc2217://HOST:PORT[?opts]      an RFC 2217 server, e.g. ser2net on a lab host ("rfc2217")
    socket://HOST:PORT              a raw TCP byte stream ("socket")
    lab:NAME  or  lab:LAB/NAME      a device of a lab file, found by its USB attributes ("lab")
    labgrid:PLACE                   a labgrid place on the lab's (or $LG_COORDINATOR's) coordinator
    labgrid://[HOST[:PORT]]/PLACE   a labgrid place on a named coordinator ("labgrid")
    replay:FILE                     a recorded console session played back as the board ("replay",
                                    harness/io/recording.py)

Everything else asks the parsed PortRef; nobody else looks at the string's prefix."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import parse_qs, urlsplit

from harness.errors import ConfigError

Scheme = Literal["device", "rfc2217", "socket", "lab", "labgrid", "replay"]
LOOPBACK = "127.0.0.1"
LABGRID_DEFAULT_PORT = 20408
FORMS = ("a device path (/dev/ttyACM0), rfc2217://HOST:PORT, socket://HOST:PORT, lab:NAME, labgrid:PLACE, "
         "labgrid://HOST:PORT/PLACE or replay:FILE")

_LAB = re.compile(r"^lab:(?:(?P<lab>[\w.-]+)/)?(?P<name>[\w.-]+)$")
_LABGRID_URL = re.compile(r"^labgrid://(?:(?P<host>[^/:]+)(?::(?P<port>\d+))?)?/(?P<place>[\w.-]+)$")
_LABGRID_SHORT = re.compile(r"^labgrid:(?P<place>[\w.-]+)$")


@dataclass(frozen=True)
class PortRef:
    text: str  # as written
    scheme: Scheme
    host: str = ""  # rfc2217 / socket
    port: int = 0
    name: str = ""  # lab device name, or labgrid place
    lab: str = ""  # lab:LAB/NAME: the lab's name ("" = any lab file)
    coordinator: str = ""  # labgrid: HOST:PORT, "" when the short form names none

    @property
    def is_network(self) -> bool:
        """Reached over TCP: there is no device node whose presence says it is plugged in."""
        return self.scheme in ("rfc2217", "socket")

    @property
    def is_indirect(self) -> bool:
        """Names a port to look up (lab file, labgrid place) rather than one to open."""
        return self.scheme in ("lab", "labgrid")

    def with_coordinator(self, default: str | None) -> PortRef:
        """A labgrid:PLACE with its coordinator filled in: ``default`` (the lab's), then
        $LG_COORDINATOR, then labgrid's own default on loopback."""
        if self.scheme != "labgrid" or self.coordinator:
            return self
        coordinator = labgrid_coordinator(default)
        return PortRef(f"labgrid://{coordinator}/{self.name}", "labgrid", name=self.name, coordinator=coordinator)

    def rfc2217_url(self) -> str:
        """The URL with the options the harness needs: ``ign_set_control`` (ser2net on a pty, or a
        USB bridge without modem lines, does not acknowledge SET_CONTROL)."""
        query = urlsplit(self.text).query
        if "ign_set_control" in parse_qs(query, keep_blank_values=True):
            return self.text
        return self.text + ("&" if query else "?") + "ign_set_control"


def labgrid_coordinator(default: str | None = None) -> str:
    """The coordinator a place without one is on: ``default`` (the lab's), then $LG_COORDINATOR,
    then labgrid's own default on loopback."""
    return default or os.environ.get("LG_COORDINATOR") or f"{LOOPBACK}:{LABGRID_DEFAULT_PORT}"


def parse_port(text: str) -> PortRef:
    """Parse a port reference; a ConfigError (without the file: callers add where it was) if bad."""
    if not isinstance(text, str) or not text:
        raise ConfigError(f"the port is empty; use {FORMS}")
    if text.startswith("/"):
        return PortRef(text, "device")
    if text.startswith(("rfc2217://", "socket://")):
        parts = urlsplit(text)
        try:
            port = parts.port
        except ValueError:
            port = None
        if not parts.hostname or not port:
            kind = "an RFC 2217" if parts.scheme == "rfc2217" else "a socket"
            raise ConfigError(f"{text!r} is not {kind} URL; write it as {parts.scheme}://HOST:PORT")
        return PortRef(text, parts.scheme, host=parts.hostname, port=port)  # type: ignore[arg-type]
    if text.startswith("replay:"):
        if len(text) > len("replay:"):
            return PortRef(text, "replay", name=text[len("replay:"):])
        raise ConfigError(f"{text!r} names no recording; write replay:FILE")
    if text.startswith("lab:"):
        if m := _LAB.match(text):
            return PortRef(text, "lab", name=m.group("name"), lab=m.group("lab") or "")
        raise ConfigError(f"{text!r} is not a lab device; write lab:NAME or lab:LAB/NAME")
    if m := _LABGRID_URL.match(text):
        coordinator = f"{m.group('host') or LOOPBACK}:{m.group('port') or LABGRID_DEFAULT_PORT}"
        return PortRef(text, "labgrid", name=m.group("place"), coordinator=coordinator)
    if m := _LABGRID_SHORT.match(text):
        return PortRef(text, "labgrid", name=m.group("place"))
    if text.startswith("labgrid:"):
        raise ConfigError(f"{text!r} is not a labgrid place; write labgrid://HOST:PORT/PLACE or labgrid:PLACE")
    raise ConfigError(f"{text!r} is not a port reference; use {FORMS}")
