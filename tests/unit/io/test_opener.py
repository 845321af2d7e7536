"""harness/io/opener.py: open_port picks the transport by the reference's scheme and refuses
references that name a port to look up (lab:, labgrid:) with a one-line ConfigError."""

from __future__ import annotations

import pytest

from harness.config.ports import parse_port
from harness.errors import ConfigError
from harness.io import TRANSPORTS, open_port, opener


def test_shipped_schemes_are_registered():
    assert {"device", "rfc2217", "socket"} <= set(TRANSPORTS)
    assert "lab" not in TRANSPORTS and "labgrid" not in TRANSPORTS


def test_open_port_picks_by_scheme_and_passes_the_settings(monkeypatch):
    monkeypatch.setattr(opener, "TRANSPORTS", {})
    calls = []

    @opener.register("device", "socket")
    def fake(ref, baudrate, **kwargs):
        calls.append((ref.scheme, ref.text, baudrate, kwargs))
        return f"transport for {ref.text}"

    assert opener.open_port(parse_port("/dev/ttyX"), 9600, write_chunk=16) == "transport for /dev/ttyX"
    assert opener.open_port(parse_port("socket://h:1")) == "transport for socket://h:1"
    assert calls == [("device", "/dev/ttyX", 9600, {"reconnect_timeout": 15.0, "write_chunk": 16}),
                     ("socket", "socket://h:1", 115200, {"reconnect_timeout": 15.0})]  # fmt: skip
    with pytest.raises(ConfigError, match=r"is a rfc2217 reference"):  # not registered in this copy
        opener.open_port(parse_port("rfc2217://h:1"))


@pytest.mark.parametrize("text", ["lab:mb", "lab:bench/mb", "labgrid:pico-7", "labgrid://h:1/pico-7"])
def test_indirect_references_are_refused(text):
    with pytest.raises(ConfigError) as info:
        open_port(parse_port(text))
    message = str(info.value)
    assert message.startswith(f"port {text!r} is a ") and "resolve it to a port before opening" in message
    assert "\n" not in message
