"""Lab files: validation (one-line errors naming file, device, key and fix), finding devices by
USB attributes, the board a device becomes, and lab devices opened as serial boards for real
(a QEMU micro:bit's pty plays the attached device)."""

from __future__ import annotations

import pytest

from harness.errors import ConfigError
from harness.testing.emulated import EmulatedDevice


def test_only_qemu_boards_can_play_devices():
    with pytest.raises(ConfigError, match=r"an emulated device must be a QEMU board, not process"):
        EmulatedDevice("native").start()


