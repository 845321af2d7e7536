"""The `hil` command (harness/cli/main.py) without booting anything: `hil boards` on a folder of
target files, one-line errors with exit status 2, `hil run`'s pytest arguments (pytest.main faked)."""

from __future__ import annotations

import pytest

from tests.conftest import write_target

PROCESS = '[image]\nbuilder = "none"\n[launch]\nkind = "process"\ncommand = ["micropython"]\n'


@pytest.fixture
def targets(tmp_path, monkeypatch):
    directory = tmp_path / "targets"
    directory.mkdir()
    monkeypatch.setenv("HIL_TARGETS", str(directory))
    return directory


def test_boards_lists_every_target_file(hil, targets):
    caps = "[capabilities]\nnet = true\nheap_kb = 64\n"
    write_target(targets, "alpha", 'description = "first fake"\n' + PROCESS + caps)
    write_target(targets, "beta", PROCESS)
    (targets / "lab-bench.toml").write_text('[lab]\nname = "bench"\n')  # a lab file: not a board row
    status, out, err = hil("boards")
    assert status == 0 and err == ""
    assert f"boards in {targets}" in out
    rows = {line.split("│")[1].strip(): line for line in out.splitlines() if line.count("│") >= 6}
    assert set(rows) == {"alpha", "beta"}
    assert "process" in rows["alpha"] and "net" in rows["alpha"] and "64 KB" in rows["alpha"]
    assert "first fake" in rows["alpha"]
    assert "bench" not in out


def test_boards_reports_a_broken_file_in_one_line_and_exits_2(hil, targets):
    write_target(targets, "alpha", PROCESS)
    (targets / "broken.toml").write_text("[board\n")
    status, out, err = hil("boards")
    assert status == 2
    assert "alpha" in out  # the good boards are still listed
    assert err.startswith("error: ") and err.count("error: ") == 1
    assert f"{targets / 'broken.toml'}: not valid TOML" in err.replace("\n", "")


@pytest.mark.parametrize(("args", "message"), [(["frobnicate"], "No such command 'frobnicate'"),
                                               (["build"], "Missing argument")])  # fmt: skip
def test_usage_errors_are_clicks_message_and_status_2(hil, args, message):
    status, _, err = hil(*args)
    assert status == 2 and message in err and "Traceback" not in err


@pytest.fixture
def fake_pytest(monkeypatch):
    """pytest.main recorded instead of run; it writes ``junit`` (when set) as a real run would."""
    calls = {"junit": None, "ret": 0}

    def main(args):
        calls["args"] = list(args)
        if calls["junit"] is not None:
            out = next(a.split("=", 1)[1] for a in args if a.startswith("--junitxml="))
            with open(out, "w") as fh:
                fh.write(calls["junit"])
        return calls["ret"]

    monkeypatch.setattr(pytest, "main", main)
    return calls


def test_run_passes_boards_suites_reports_and_extra_arguments_to_pytest(hil, fake_pytest, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mysuite").mkdir()
    fake_pytest["ret"] = 1
    status, _, _ = hil("run", "-b", "native", "--board", "tag:esp32", "-s", "mysuite", "--out", "o", "-n", "2",
                       "-k", "tcp", "--hil-retries=0")  # fmt: skip
    assert status == 1  # pytest's status is the command's (CI must see failures)
    args = fake_pytest["args"]
    assert args[0] == "mysuite"  # an existing path is passed as given
    assert "--board=native" in args and "--board=tag:esp32" in args
    assert "--junitxml=o/junit.xml" in args and "--hil-logs=o/logs" in args
    assert args[args.index("-n") + 1] == "2"
    assert args[args.index("-k") + 1] == "tcp" and "--hil-retries=0" in args
    assert (tmp_path / "o").is_dir()


def test_run_by_default_runs_the_projects_suites(hil, fake_pytest, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    hil("run")
    args = fake_pytest["args"]
    assert args[0].endswith("/suites") and not any(a.startswith("--board") for a in args) and "-n" not in args


def test_run_says_when_nothing_was_collected(hil, fake_pytest, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fake_pytest["ret"] = pytest.ExitCode.NO_TESTS_COLLECTED
    status, _, err = hil("run", "--board", "nope")
    assert status == 5 and "error: no tests were collected: check --suite and --board" in err


def test_run_prints_verdicts_and_writes_html_from_the_junit_file(hil, fake_pytest, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "junit.xml").write_text("stale")  # a previous run's file is removed first
    (tmp_path / "o" / "report.html").write_text("stale")
    fake_pytest["junit"] = (
        '<testsuites><testsuite name="pytest">'
        '<testcase classname="suites.smoke.test_smoke" name="test_a[native]">'
        '<properties><property name="board" value="native"/></properties></testcase>'
        '<testcase classname="suites.smoke.test_smoke" name="test_b[native]">'
        '<properties><property name="board" value="native"/></properties><failure message="boom"/></testcase>'
        "</testsuite></testsuites>"
    )
    status, out, _ = hil("run", "--out", "o")
    assert status == 0
    assert "per-board verdict" in out and "FAIL" in out and "boom" in out
    assert "board x suite" in out
    html = (tmp_path / "o" / "report.html").read_text()
    assert html != "stale" and "test_b[native]" in html


# --- an interrupted run: INTERRUPTED verdicts, status 130, HTML written even on a second Ctrl-C -------------

PARTIAL_JUNIT = (
    '<testsuites><testsuite name="pytest">'
    '<testcase classname="suites.smoke.test_smoke" name="test_a[native]">'
    '<properties><property name="board" value="native"/></properties></testcase>'
    '<testcase classname="suites.smoke.test_smoke" name="test_b[native]">'
    '<properties><property name="board" value="native"/></properties></testcase>'
    "</testsuite></testsuites>"
)


def _verdict_row(out: str, board: str) -> list[str]:
    row = next(line for line in out.splitlines() if line.count("│") >= 8 and line.split("│")[1].strip() == board)
    return [cell.strip() for cell in row.split("│")[1:-1]]


def test_run_interrupted_says_so_with_the_counts_and_exits_130(hil, fake_pytest, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fake_pytest["junit"], fake_pytest["ret"] = PARTIAL_JUNIT, pytest.ExitCode.INTERRUPTED
    status, out, err = hil("run", "--out", "o")
    assert status == 130
    assert _verdict_row(out, "native")[:4] == ["native", "INTERRUPTED", "2", "0"]
    assert "PASS" not in out.split("per-board verdict")[1].split("board x suite")[0]
    assert "hil: interrupted" in err and "Traceback" not in err
    assert "test_b[native]" in (tmp_path / "o" / "report.html").read_text()


def test_second_ctrl_c_in_pytest_still_writes_html(hil, fake_pytest, tmp_path, monkeypatch):
    """The second Ctrl-C lands while pytest winds down (JUnit already written) and escapes pytest.main."""
    monkeypatch.chdir(tmp_path)
    fake_pytest["junit"] = PARTIAL_JUNIT
    real_main = pytest.main

    def interrupted_main(args):
        real_main(args)  # the fake: writes the JUnit file
        raise KeyboardInterrupt

    monkeypatch.setattr(pytest, "main", interrupted_main)
    status, out, err = hil("run", "--out", "o")
    assert status == 130 and "INTERRUPTED" in out and "Traceback" not in err
    assert (tmp_path / "o" / "report.html").exists()


def test_ctrl_c_while_the_reports_are_written_does_not_lose_the_html(hil, fake_pytest, tmp_path, monkeypatch):
    import os
    import signal

    from harness.report import html as html_module

    monkeypatch.chdir(tmp_path)
    fake_pytest["junit"], fake_pytest["ret"] = PARTIAL_JUNIT, pytest.ExitCode.INTERRUPTED
    real_render = html_module.render

    def render(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)  # a second Ctrl-C, in the middle of writing the report
        return real_render(*args, **kwargs)

    monkeypatch.setattr(html_module, "render", render)
    before = signal.getsignal(signal.SIGINT)  # default_int_handler; SIG_IGN in a job started with & by sh
    status, _, _ = hil("run", "--out", "o")
    assert status == 130
    assert "test_a[native]" in (tmp_path / "o" / "report.html").read_text()
    assert signal.getsignal(signal.SIGINT) is before  # Ctrl-C works again afterwards
