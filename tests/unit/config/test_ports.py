"""harness/config/ports.py: every form of port reference, good and bad, and the error wording."""

from __future__ import annotations

import pytest

from harness.config.ports import FORMS, PortRef, parse_port
from harness.errors import ConfigError


@pytest.mark.parametrize(
    ("text", "scheme", "fields"),
    [
        ("/dev/ttyACM0", "device", {}),
        ("/dev/serial/by-id/usb-x-if00", "device", {}),
        ("rfc2217://lab1:4001", "rfc2217", {"host": "lab1", "port": 4001}),
        ("rfc2217://127.0.0.1:4001?logging=debug", "rfc2217", {"host": "127.0.0.1", "port": 4001}),
        ("socket://10.0.0.2:23", "socket", {"host": "10.0.0.2", "port": 23}),
        ("lab:pico-1", "lab", {"name": "pico-1", "lab": ""}),
        ("lab:bench/pico-1", "lab", {"name": "pico-1", "lab": "bench"}),
        ("labgrid:pico-7", "labgrid", {"name": "pico-7", "coordinator": ""}),
        ("labgrid://lab2:20409/pico-7", "labgrid", {"name": "pico-7", "coordinator": "lab2:20409"}),
        ("labgrid://lab2/pico-7", "labgrid", {"name": "pico-7", "coordinator": "lab2:20408"}),
        ("labgrid:///pico-7", "labgrid", {"name": "pico-7", "coordinator": "127.0.0.1:20408"}),
    ],
)
def test_good_references(text, scheme, fields):
    ref = parse_port(text)
    assert (ref.text, ref.scheme) == (text, scheme)
    for key, value in fields.items():
        assert getattr(ref, key) == value, key
    assert ref.is_network == (scheme in ("rfc2217", "socket"))
    assert ref.is_indirect == (scheme in ("lab", "labgrid"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", f"the port is empty; use {FORMS}"),
        ("COM3", f"'COM3' is not a port reference; use {FORMS}"),
        ("ttyUSB0", "'ttyUSB0' is not a port reference"),
        ("rfc2217://host", "'rfc2217://host' is not an RFC 2217 URL; write it as rfc2217://HOST:PORT"),
        ("rfc2217://host:notaport", "is not an RFC 2217 URL"),
        ("rfc2217://:4001", "is not an RFC 2217 URL"),
        ("socket://host", "'socket://host' is not a socket URL; write it as socket://HOST:PORT"),
        ("lab:", "'lab:' is not a lab device; write lab:NAME or lab:LAB/NAME"),
        ("lab:a/b/c", "is not a lab device"),
        ("labgrid://h:1/", "'labgrid://h:1/' is not a labgrid place; write labgrid://HOST:PORT/PLACE or labgrid:PLACE"),
        ("labgrid:a b", "is not a labgrid place"),
    ],
)
def test_bad_references_are_one_line_config_errors(text, message):
    with pytest.raises(ConfigError) as info:
        parse_port(text)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_a_non_string_is_refused():
    with pytest.raises(ConfigError, match="the port is empty"):
        parse_port(None)  # type: ignore[arg-type]


def test_labgrid_short_form_takes_a_coordinator(monkeypatch):
    monkeypatch.delenv("LG_COORDINATOR", raising=False)
    short = parse_port("labgrid:p1")
    assert short.with_coordinator("lab9:1234") == PortRef("labgrid://lab9:1234/p1", "labgrid", name="p1",
                                                         coordinator="lab9:1234")  # fmt: skip
    assert short.with_coordinator(None).coordinator == "127.0.0.1:20408"
    monkeypatch.setenv("LG_COORDINATOR", "env-host:7")
    assert short.with_coordinator(None).text == "labgrid://env-host:7/p1"
    named = parse_port("labgrid://h:5/p1")
    assert named.with_coordinator("other:1") is named  # a coordinator written out wins
    device = parse_port("/dev/ttyACM0")
    assert device.with_coordinator("x:1") is device


def test_rfc2217_url_adds_ign_set_control_once():
    assert parse_port("rfc2217://h:1").rfc2217_url() == "rfc2217://h:1?ign_set_control"
    assert parse_port("rfc2217://h:1?logging=debug").rfc2217_url() == "rfc2217://h:1?logging=debug&ign_set_control"
    assert parse_port("rfc2217://h:1?ign_set_control").rfc2217_url() == "rfc2217://h:1?ign_set_control"
