from __future__ import annotations

from pathlib import Path

import pytest

from harness.config.boards import find_board, load_all, load_board
from harness.errors import ConfigError
from tests.conftest import REPO, write_target

QEMU = '[launch]\nkind = "qemu"\nmachine = "mps2-an385"\n'


def test_every_shipped_target_file_loads():
    boards = load_all(REPO / "targets")
    assert {"native", "mps2_an385", "microbit"} <= set(boards)
    for name, spec in boards.items():
        assert spec.name == name and spec.description


def test_capabilities_and_console_values(tmp_path):
    path = write_target(tmp_path, "b", QEMU + "[console]\nwrite_chunk = 32\nwrite_gap_ms = 2\n"
                        "[capabilities]\nnet = true\nheap_kb = 64\n")
    spec = load_board(path)
    assert spec.capabilities.has("net") and not spec.capabilities.has("can")
    assert spec.capabilities.heap_kb == 64
    assert (spec.console.write_chunk, spec.console.write_gap_ms) == (32, 2)


def test_image_options_pass_through(tmp_path):
    spec = load_board(write_target(tmp_path, "b", QEMU + '[image]\nbuilder = "microbit_hex"\nfiles = ["a.py"]\n'))
    assert spec.image.builder == "microbit_hex" and spec.image.options == {"files": ["a.py"]}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (QEMU + "[console]\nbaud = 9600\n", "unknown key 'console.baud'"),
        (QEMU + "[capabilities]\nnet = 'yes'\n", "key 'capabilities.net' must be bool"),
        (QEMU + "[console]\nboot_timeout = -1\n", "'console.boot_timeout' must be > 0"),
        (QEMU + "[launch2]\n", "unknown table [launch2]"),
        ('[launch]\nkind = "qemu"\n', "'launch.machine' is required"),
        ('[launch]\nkind = "ssh"\n', "'launch.kind' is 'ssh'"),
        ('[launch]\nkind = "serial"\n', "'launch.port' is required"),
        (QEMU + '[image]\nbuilder = "yocto"\n', "'image.builder' is 'yocto'"),
        (QEMU + "[console]\nwrite_chunk = 1.5\n", "'console.write_chunk' must be int"),
        (QEMU + '[console]\nack_module = "hil_paste"\nack_every = 21\n',
         "'console.ack_module' needs 'console.rx_buffer' > 0 and 'console.ack_every' between 1 and rx_buffer"),
        (QEMU + '[console]\nack_module = "hil_paste"\nrx_buffer = 63\nack_every = 64\n', "(got 63 and 64)"),
        (QEMU + "[console]\ncompress_min = -1\n", "key 'console.compress_min' is -1; use a byte count >= 0"),
        (QEMU + "[launch.args]\n", "'launch.args' must be list[str]"),
        (QEMU + '[network]\nnic = "pci"\n', "key 'network.nic' is 'pci'; use \"device\" or \"board\""),
        (QEMU + '[network]\nconfigure = "dhcp"\n', "key 'network.configure' is 'dhcp'; use \"kernel\" or \"repl\""),
        (QEMU + '[network]\nmac = "52:54:00:12:34"\n', "key 'network.mac' is '52:54:00:12:34'; write six hex"),
        (QEMU + '[network]\nmac = "52:54:00:12:34:zz"\n', "key 'network.mac' is '52:54:00:12:34:zz'"),
        (QEMU + '[network]\nmac = "525400123456"\n', "key 'network.mac' is '525400123456'"),
        (QEMU + '[network]\nmac = "52:54:00:12:34:5"\n', "key 'network.mac' is '52:54:00:12:34:5'"),
        (QEMU + "[network]\nmac = 5\n", "key 'network.mac' must be str"),
        (QEMU + '[network]\nmode = "user"\n', "add \"-append\" to launch.args"),  # configure = "kernel"
        # each launch kind checks its own keys
        ('[launch]\nkind = "process"\n', "'launch.command' is required for a process board"),
        ('[launch]\nkind = "serial"\nport = "/dev/x"\nmachine = "m"\n',
         "unknown key 'launch.machine' (known: kind, port)"),
        ('[launch]\nkind = "process"\ncommand = ["mp"]\nport = "/dev/x"\n',
         "unknown key 'launch.port' (known: command, entry, env, kind, spare)"),
        ('[launch]\nkind = "process"\ncommand = "micropython"\n', "key 'launch.command' must be list[str]"),
        ('[launch]\nkind = "process"\ncommand = ["mp"]\nenv = { A = 1 }\n', "key 'launch.env' must be dict[str, str]"),
        (QEMU + "ok_exit_codes = [0, \"1\"]\n", "key 'launch.ok_exit_codes' must be list[int]"),
        ('[launch]\nkind = 3\n', "key 'launch.kind' is 3; use one of qemu, process, serial"),
        # closed choices are Literal types, checked from the annotation
        (QEMU + '[console]\nchardev = "tcp"\n', "key 'console.chardev' is 'tcp'; use \"pty\" or \"socket\""),
        (QEMU + '[console]\nreset = "hard"\n', "key 'console.reset' is 'hard'; use \"soft\" or \"none\""),
        (QEMU + '[network]\nmode = "bridge"\n', "key 'network.mode' is 'bridge'; use one of none, user, tap"),
        (QEMU + '[can]\nlink = "usb"\n', "key 'can.link' is 'usb'; use one of none, slcan_serial, python_can"),
        (QEMU + "[can]\nlink = true\n", "key 'can.link' is True; use one of"),
        # CAN links
        ('[launch]\nkind = "serial"\nport = "/dev/x"\n[can]\nlink = "slcan_serial"\n',
         "[network], [can] link slcan_serial and [snapshot] need launch.kind = \"qemu\""),
        ('[launch]\nkind = "serial"\nport = "/dev/x"\n[can]\nlink = "python_can"\nchannel = "can0"\n',
         "key 'can.interface' is required for link python_can"),
        ('[launch]\nkind = "serial"\nport = "/dev/x"\n[can]\nlink = "python_can"\ninterface = "nosuchbus"\n'
         'channel = "c"\n', "key 'can.interface' is 'nosuchbus'; use a python-can interface"),
        # crash signatures are regular expressions; the CPU probe asks QEMU
        (QEMU + "[console]\ncrash = ['HardFault (']\n", "'console.crash' has 'HardFault (', which is not a regular"),
        (QEMU + "[console]\ncrash = 'HardFault'\n", "key 'console.crash' must be list[str]"),
        (QEMU + "[console]\ncrash_cpu = '[handler'\n", "key 'console.crash_cpu' has '[handler'"),
        ('[launch]\nkind = "process"\ncommand = ["mp"]\n[console]\ncrash_cpu = "handler"\n',
         "key 'console.crash_cpu' asks QEMU for registers: set it on QEMU boards only"),
        # tags
        ('tags = "esp32"\n' + QEMU, "key 'board.tags' must be list[str]"),
        ('tags = ["tag:esp32"]\n' + QEMU, "key 'board.tags' has 'tag:esp32'; write tag names without 'tag:'"),
    ],
)
def test_bad_values_name_file_and_key(tmp_path, body, expected):
    path = write_target(tmp_path, "b", body)
    with pytest.raises(ConfigError) as info:
        load_board(path)
    message = str(info.value)
    assert str(path) in message and expected in message
    assert "\n" not in message


def test_network_of_a_board_with_its_own_stack(tmp_path):
    """configure = "repl": the firmware brings its NIC up itself, so no kernel command line is needed."""
    spec = load_board(write_target(tmp_path, "b", QEMU + '[network]\nmode = "user"\ndevice = "lan9118"\n'
                                   'nic = "board"\nconfigure = "repl"\nmac = "52:54:00:A3:85:1f"\n'))
    net = spec.network
    assert (net.mode, net.device, net.nic, net.configure, net.mac) == ("user", "lan9118", "board", "repl",
                                                                       "52:54:00:A3:85:1f")
    defaults = load_board(write_target(tmp_path, "c", QEMU)).network
    assert (defaults.nic, defaults.configure, defaults.mac) == ("device", "kernel", "")


def test_shipped_mps2_targets_are_network_boards():
    for name, mode in (("mps2_an385", "user"), ("mps2_an385_tap", "tap")):
        spec = find_board(name, REPO / "targets")
        assert (spec.network.mode, spec.network.nic, spec.network.configure) == (mode, "board", "repl")
        assert spec.capabilities.has("net") and spec.capabilities.has("tls")
        assert spec.image.options["heap_kb"] == spec.capabilities.heap_kb


def test_name_must_match_file(tmp_path):
    path = tmp_path / "x.toml"
    path.write_text('[board]\nname = "y"\n' + QEMU)
    with pytest.raises(ConfigError, match=r"'board\.name' is 'y' but the file is x\.toml"):
        load_board(path)


def test_bad_toml_syntax(tmp_path):
    path = tmp_path / "x.toml"
    path.write_text("[board\nname = 'x'")
    with pytest.raises(ConfigError, match=r"x.toml: not valid TOML"):
        load_board(path)


def test_missing_board_table(tmp_path):
    path = tmp_path / "x.toml"
    path.write_text(QEMU)
    with pytest.raises(ConfigError, match=r"missing \[board\] table"):
        load_board(path)


def test_unknown_board_lists_known_ones(tmp_path):
    write_target(tmp_path, "alpha", QEMU)
    with pytest.raises(ConfigError, match=r"no board named 'beta'.*known boards: alpha"):
        find_board("beta", tmp_path)


def test_lab_files_are_not_boards(tmp_path):
    write_target(tmp_path, "alpha", QEMU)
    (tmp_path / "lab-bench.toml").write_text("[devices]\n")
    assert list(load_all(Path(tmp_path))) == ["alpha"]


def test_launch_kinds_are_their_own_dataclasses(tmp_path):
    from harness.config.boards import LAUNCH_SPECS, ProcessLaunch, QemuLaunch, SerialLaunch

    assert {"qemu": QemuLaunch, "process": ProcessLaunch, "serial": SerialLaunch} == LAUNCH_SPECS
    qemu = load_board(write_target(tmp_path, "q", QEMU + "ok_exit_codes = [0, 3]\n")).launch
    assert qemu == QemuLaunch(machine="mps2-an385", ok_exit_codes=[0, 3]) and qemu.describe() == "mps2-an385"
    proc = load_board(write_target(tmp_path, "p", '[launch]\nkind = "process"\ncommand = ["mp", "-X"]\n')).launch
    assert proc == ProcessLaunch(command=["mp", "-X"]) and proc.describe() == "mp -X"
    ser = load_board(write_target(tmp_path, "s", '[launch]\nkind = "serial"\nport = "rfc2217://h:1"\n')).launch
    assert ser == SerialLaunch(port="rfc2217://h:1") and ser.kind == "serial"
    # no [launch]: a QEMU board, which needs its machine
    with pytest.raises(ConfigError, match=r"'launch\.machine' is required"):
        load_board(write_target(tmp_path, "n", ""))


def test_tags_and_python_can_link(tmp_path):
    from harness.lab.pool import board_tags

    spec = load_board(write_target(tmp_path, "b", 'arch = "xtensa"\ntags = ["esp32", "bench-a"]\n'
                                   '[launch]\nkind = "serial"\nport = "/dev/x"\n'
                                   '[can]\nlink = "python_can"\ninterface = "virtual"\nchannel = "v0"\n'))  # fmt: skip
    assert spec.tags == ["esp32", "bench-a"]
    assert {"esp32", "bench-a", "xtensa", "serial", "b"} <= board_tags(spec)
    assert (spec.can.link, spec.can.interface, spec.can.channel, spec.can.bitrate) == ("python_can", "virtual", "v0", 0)


def test_shipped_can_boards_keep_their_slcan_link():
    for name, kernel in (("qemu_x86", True), ("mps2_an385", False)):
        can = find_board(name, REPO / "targets").can
        assert (can.link, can.kernel_params, can.interface) == ("slcan_serial", kernel, "")


# --- what the machine must have installed: checked at `hil boards` and board start, not at load ----
@pytest.mark.parametrize(("binary", "fix"), [
    ("qemu-system-arm", "install Debian package qemu-system-arm (make setup does)"),
    ("qemu-system-x86_64", "install Debian package qemu-system-x86 (make setup does)"),
    ("qemu-system-hilnope", "install it or fix the path"),
])  # fmt: skip
def test_a_missing_qemu_binary_names_file_key_and_package(tmp_path, monkeypatch, binary, fix):
    from harness.config.boards import check_installed, installation_problems

    path = write_target(tmp_path, "b", f'[launch]\nmachine = "microbit"\nbinary = "{binary}"\n')
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # a machine without QEMU
    spec = load_board(path)  # the file itself is valid: unit tests and CI steps run without QEMU
    message = f"{path}: key 'launch.binary' is '{binary}', which is not on PATH: {fix}"
    assert installation_problems(spec) == [message]
    with pytest.raises(ConfigError) as info:
        check_installed(spec)
    assert str(info.value) == message


def test_a_qemu_binary_path_must_exist_and_run(tmp_path):
    from harness.config.boards import check_installed, installation_problems

    tool = tmp_path / "qemu-system-arm"
    path = write_target(tmp_path, "b", f'[launch]\nmachine = "microbit"\nbinary = "{tool}"\n')
    spec = load_board(path)
    assert installation_problems(spec) == [
        f"{path}: key 'launch.binary' is '{tool}', which does not exist: install it or fix the path"]
    tool.write_text("#!/bin/sh\n")
    assert "is not executable" in installation_problems(spec)[0]
    tool.chmod(0o755)
    check_installed(spec)
    serial = load_board(write_target(tmp_path, "s", '[launch]\nkind = "serial"\nport = "/dev/ttyHILGONE"\n'))
    assert installation_problems(serial) == []  # a port is the bench's state: checked when opened


def test_crash_signatures_default_to_micropythons_fatal_errors_and_shipped_boards_name_theirs(tmp_path):
    import re

    from harness.config.boards import MICROPYTHON_CRASH

    spec = load_board(write_target(tmp_path, "b", QEMU))
    assert spec.console.crash == list(MICROPYTHON_CRASH) and spec.console.crash_cpu == ""
    boards = load_all(REPO / "targets")
    hardfault = "HardFault exception caught:\r\nR0:   F0000000 R1:   00089870"
    assert any(re.search(p, hardfault, re.M) for p in boards["mps2_an385"].console.crash)
    panic = "[    1.2] Kernel panic - not syncing: Attempted to kill init!"
    assert any(re.search(p, panic, re.M) for p in boards["qemu_x86"].console.crash)
    assert re.search(boards["microbit"].console.crash_cpu, "XPSR=21000003 --C- T handler")
    assert not re.search(boards["microbit"].console.crash_cpu, "XPSR=61000000 -ZC- T priv-thread")
    assert not re.search(boards["microbit"].console.crash_cpu, "XPSR=21000013 --C- T handler")  # an IRQ
