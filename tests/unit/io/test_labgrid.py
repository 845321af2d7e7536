"""Remote devices, all real processes on loopback: a QEMU micro:bit's pty exported by ser2net
(RFC 2217) and by a labgrid coordinator + exporter, flashed and smoke-tested through them; the
RFC 2217 link surviving a dropped connection; labgrid places always given back."""

from __future__ import annotations

import os

import pytest

from harness import procs
from harness.errors import InfrastructureError
from harness.io import labgrid
from harness.net.boardnet import free_port


@pytest.mark.spawns
def test_no_coordinator_is_one_line(no_leftovers):
    address = f"127.0.0.1:{free_port()}"
    with pytest.raises(InfrastructureError) as info:
        labgrid.LabgridPlace("p", address).acquire()
    assert str(info.value) == ("labgrid place 'p': Could not connect to coordinator: "
                               "is labgrid-coordinator running there?")  # fmt: skip
    assert os.path.exists(procs.tool("labgrid-client", "labgrid"))


