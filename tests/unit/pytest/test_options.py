"""The plugin's command-line options and what configure makes of them (no board is started)."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from harness.lab.pool import BoardPool
from harness.pytest import options
from harness.pytest.state import POOL, STATE, RunState

DEFAULTS = {"board": [], "targets": None, "hil_logs": "hil-out/logs", "hil_retries": 1, "hil_quarantine_after": 3,
            "hil_lock_timeout": 30.0, "hil_lab": [], "hil_port": []}  # fmt: skip


def fake_config(worker: str | None = None, **given) -> SimpleNamespace:
    """Just what options.pytest_configure and lab_devices touch of a pytest.Config."""
    values = {**DEFAULTS, **given}
    config = SimpleNamespace(getoption=values.__getitem__, stash=pytest.Stash(), ini_lines=[],
                             pluginmanager=SimpleNamespace(getplugin=lambda name: None))  # fmt: skip
    config.addinivalue_line = lambda name, line: config.ini_lines.append((name, line))
    if worker:
        config.workerinput = {"workerid": worker}
    return config


def test_configure_puts_a_pool_and_fresh_run_state_on_the_stash(tmp_path):
    config = fake_config(hil_logs=str(tmp_path / "logs"), hil_lock_timeout=2.5)
    options.pytest_configure(config)
    pool = config.stash[POOL]
    assert isinstance(pool, BoardPool) and pool.log_dir == tmp_path / "logs" and pool.lock_timeout == 2.5
    assert pool.extra == {}  # no --hil-lab: no lab devices
    assert config.stash[STATE] == RunState()
    assert {name for name, _ in config.ini_lines} == {"markers"}
    assert any(line.startswith("requires(") for _, line in config.ini_lines)
    assert any(line.startswith("boards(") for _, line in config.ini_lines)


def test_each_xdist_worker_logs_to_its_own_directory(tmp_path):
    config = fake_config(worker="gw1", hil_logs=str(tmp_path / "logs"))
    options.pytest_configure(config)
    assert config.stash[POOL].log_dir == tmp_path / "logs" / "gw1"


@pytest.mark.parametrize("bad", [{"hil_retries": -1}, {"hil_quarantine_after": -2}])
def test_negative_retries_or_quarantine_is_a_usage_error(bad):
    with pytest.raises(pytest.UsageError, match=r"^--hil-retries and --hil-quarantine-after must be >= 0$"):
        options.pytest_configure(fake_config(**bad))


def test_zero_retries_and_no_quarantine_are_allowed(tmp_path):
    config = fake_config(hil_retries=0, hil_quarantine_after=0, hil_logs=str(tmp_path))
    options.pytest_configure(config)
    assert POOL in config.stash


def test_targets_option_is_where_boards_come_from(tmp_path, monkeypatch):
    monkeypatch.setenv("HIL_TARGETS", "/elsewhere")  # restored after the test: configure overwrites it
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine").mkdir()
    options.pytest_configure(fake_config(targets="mine", hil_logs=str(tmp_path / "logs")))
    assert os.environ["HIL_TARGETS"] == str(tmp_path / "mine")  # made absolute: xdist workers may chdir


def test_targets_option_unset_leaves_hil_targets_alone(tmp_path, monkeypatch):
    monkeypatch.setenv("HIL_TARGETS", "/elsewhere")
    options.pytest_configure(fake_config(hil_logs=str(tmp_path)))
    assert os.environ["HIL_TARGETS"] == "/elsewhere"


@pytest.mark.parametrize("item", ["d1", "=rfc2217://h:1", "d1=", "="])
def test_hil_port_must_be_name_equals_port(item):
    with pytest.raises(pytest.UsageError) as info:
        options.lab_devices(fake_config(hil_port=[item], hil_lab=["lab.toml"]))
    assert str(info.value) == f"--hil-port {item}: write NAME=PORT (a device of a --hil-lab file)"


def test_hil_port_without_a_lab_file_is_a_usage_error():
    with pytest.raises(pytest.UsageError, match=r"^--hil-port names a device of a lab file: add --hil-lab FILE$"):
        options.lab_devices(fake_config(hil_port=["d1=/dev/ttyX"]))


def test_no_lab_file_means_no_lab_devices():
    assert options.lab_devices(fake_config()) == {}


QUIET = ("-p", "no:cacheprovider", "-p", "no:labgrid")  # labgrid's plugin alone takes a second to load
LAB = '[lab]\nname = "t"\n[[device]]\nname = "d1"\nport = "/dev/ttyHILNONE"\ntags = ["rp2040"]\n'


def test_lab_devices_take_the_ports_given_on_the_command_line(tmp_path):
    lab = tmp_path / "lab-t.toml"
    lab.write_text(LAB)
    boards = options.lab_devices(fake_config(hil_lab=[str(lab)], hil_port=["d1=rfc2217://h:1"]))
    assert list(boards) == ["d1"] and boards["d1"].launch.port == "rfc2217://h:1"
    assert options.lab_devices(fake_config(hil_lab=[str(lab)]))["d1"].launch.port == "/dev/ttyHILNONE"


def test_lab_file_mistakes_are_usage_errors_naming_the_file(tmp_path):
    lab = tmp_path / "lab-t.toml"
    lab.write_text(LAB)
    with pytest.raises(pytest.UsageError) as info:
        options.lab_devices(fake_config(hil_lab=[str(lab)], hil_port=["zz=/dev/x"]))
    assert "--hil-port zz: no such device in" in str(info.value)
    lab.write_text("[lab\n")
    with pytest.raises(pytest.UsageError) as info:
        options.lab_devices(fake_config(hil_lab=[str(lab)]))
    assert str(lab) in str(info.value) and "\n" not in str(info.value)


def test_terminal_log_writes_past_capture(capsys):
    log = options._terminal_log(fake_config())
    log("device busy; waiting up to 30 s")
    assert capsys.readouterr().err == "hil: device busy; waiting up to 30 s\n"


def test_bad_options_on_the_command_line(pytester, monkeypatch):
    """As a user sees it: pytest's usage error (exit status 4), one line, no traceback."""
    monkeypatch.setenv("HIL_TARGETS", str(pytester.mkdir("targets")))
    pytester.makepyfile(test_one="def test_x():\n    pass\n")
    result = pytester.runpytest(*QUIET, "--hil-retries=-1")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--hil-retries and --hil-quarantine-after must be >= 0" in result.stderr.str()
    assert "Traceback" not in result.stderr.str()
    result = pytester.runpytest(*QUIET, "--hil-quarantine-after=x")
    assert result.ret == pytest.ExitCode.USAGE_ERROR and "--hil-quarantine-after" in result.stderr.str()
    result = pytester.runpytest(*QUIET, "--hil-retries=0", "--hil-quarantine-after=0", f"--hil-logs={Path('logs')}")
    assert result.ret == pytest.ExitCode.OK
