"""harness/launch/registry.py: a target's [launch] kind picks the launcher that starts it."""

from __future__ import annotations

import dataclasses

import pytest

from harness.config.boards import load_board
from harness.errors import ConfigError
from harness.images import Image
from harness.launch import LAUNCHERS, make_launcher, register
from harness.launch.process import ProcessLauncher
from harness.launch.qemu.launcher import QemuLauncher
from harness.launch.serial import SerialLauncher
from tests.conftest import write_target


def test_shipped_kinds_are_registered():
    assert {"process", "qemu", "serial"} <= set(LAUNCHERS)


@pytest.mark.parametrize(
    ("body", "cls"),
    [
        ('[launch]\nkind = "process"\ncommand = ["sleep", "1"]\n', ProcessLauncher),
        ('[launch]\nkind = "qemu"\nmachine = "microbit"\n', QemuLauncher),
        ('[launch]\nkind = "serial"\nport = "/dev/ttyHILNOPE"\n', SerialLauncher),
    ],
)
def test_make_launcher_picks_by_kind(tmp_path, body, cls):
    spec = load_board(write_target(tmp_path, "b", body))
    launcher = make_launcher(spec, Image(digest="none"), tmp_path, tmp_path, log=lambda m: None)
    assert type(launcher) is cls
    assert not launcher.alive()  # made, not started


def test_register_adds_a_kind_and_unknown_kinds_fail(tmp_path, monkeypatch):
    monkeypatch.setattr("harness.launch.registry.LAUNCHERS", dict(LAUNCHERS))
    from harness.launch import registry

    made = []

    @register("mine")
    def factory(spec, ctx):
        made.append((spec.name, ctx.workdir))
        return "a launcher"

    assert registry.LAUNCHERS["mine"] is factory and "mine" not in LAUNCHERS  # the copy, not the real one
    spec = load_board(write_target(tmp_path, "b", '[launch]\nkind = "process"\ncommand = ["true"]\n'))
    mine = dataclasses.replace(spec, launch=dataclasses.replace(spec.launch, kind="mine"))
    assert registry.make_launcher(mine, Image(digest="none"), tmp_path, tmp_path) == "a launcher"
    assert made == [("b", tmp_path)]
    nosuch = dataclasses.replace(spec, launch=dataclasses.replace(spec.launch, kind="nosuch"))
    unknown = r"b\.toml: key 'launch.kind' is 'nosuch'; no launcher is registered for it \(known: .*mine"
    with pytest.raises(ConfigError, match=unknown):
        registry.make_launcher(nosuch, Image(digest="none"), tmp_path, tmp_path)
