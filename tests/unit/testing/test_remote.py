"""Remote devices, all real processes on loopback: a QEMU micro:bit's pty exported by ser2net
(RFC 2217) and by a labgrid coordinator + exporter, flashed and smoke-tested through them; the
RFC 2217 link surviving a dropped connection; labgrid places always given back."""

from __future__ import annotations

import pytest

from harness.errors import ConfigError, InfrastructureError
from harness.testing import remote as local_lab


def test_ser2net_mistakes_are_one_line():
    with pytest.raises(InfrastructureError, match=r"ser2net: serial port /dev/ttyHILNOPE \(x\) does not exist"):
        local_lab.Ser2net({"x": "/dev/ttyHILNOPE"})
    with pytest.raises(ConfigError, match=r"connection name 'a b' must be letters"):
        local_lab.Ser2net({"a b": "/dev/null"})


