"""harness/launch/base.py: a launcher's optional abilities default to off, and launch arguments
expand their placeholders or say which one is unknown."""

from __future__ import annotations

import pytest

from harness.config.boards import load_board
from harness.errors import InfrastructureError
from harness.launch.base import Launcher, _expand
from tests.conftest import write_target


class Minimal(Launcher):
    def start(self):
        raise NotImplementedError

    def stop(self) -> None:
        pass

    def alive(self) -> bool:
        return False


def test_default_abilities(tmp_path):
    launcher = Minimal()
    assert Minimal.can_hard_reset is False and Minimal.can_wait_exit is False
    assert launcher.net is None and launcher.can is None and launcher.restored is False
    assert launcher.start_capture(tmp_path / "x.pcap") is None
    launcher.stop_capture("anything")  # nothing to stop: no error
    assert launcher.exit_status is None and launcher.ok_exit_codes == [0]
    launcher.at_prompt()  # an optional hook: nothing by default
    assert launcher.death() == "the board is gone"
    with pytest.raises(InfrastructureError, match=r"^Minimal boards cannot end themselves with a status$"):
        launcher.wait_exit(1.0)


def test_a_launcher_must_implement_start_stop_alive():
    class Incomplete(Launcher):
        def start(self):
            return None

    with pytest.raises(TypeError, match="abstract"):
        Incomplete()  # type: ignore[abstract]


def test_expand_placeholders(tmp_path):
    spec = load_board(write_target(tmp_path, "q", '[launch]\nkind = "qemu"\nmachine = "microbit"\n'))
    assert _expand(["-kernel", "{firmware}", "-m", "16"], {"firmware": "/fw.elf"}, spec) == \
        ["-kernel", "/fw.elf", "-m", "16"]
    with pytest.raises(InfrastructureError, match=r"placeholder \{nope\} in launch arguments is unknown"):
        _expand(["{nope}"], {"firmware": "/fw.elf"}, spec)
