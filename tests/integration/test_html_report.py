"""The static HTML report of a real run (pass, failure, skip, infrastructure error, retry), checked
as a file and in headless Chromium (Debian package `chromium`, installed by `make setup`)."""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from harness.report.html import write_html
from tests.integration.test_report import DEAD, run_suite

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("html")
    junit = root / "junit.xml"
    status = run_suite(root, ["native", "microbit", "dead"], junit, {"dead": DEAD})
    assert status == pytest.ExitCode.TESTS_FAILED
    return write_html(junit, root / "out" / "report.html")


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    assert CHROMIUM, "chromium is not installed: run `make setup` (Debian package chromium)"
    cmd = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--enable-logging=stderr", "--v=0",
        f"--user-data-dir={tmp_path / 'profile'}", *args,
    ]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, start_new_session=True)


def test_html_is_self_contained_and_complete(report):
    html = report.read_text()
    assert "<script" not in html.lower()  # CSS only
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)  # no external assets
    assert "<link" not in html and "@import" not in html
    # the matrix: a row per board, a column per suite (the directory under suites/)
    matrix = html[html.index('<table id="matrix"') : html.index("</table>", html.index('<table id="matrix"'))]
    assert "<th>demo</th>" in matrix
    for board in ("native", "microbit", "dead"):
        assert f'<th scope="row">{board}</th>' in matrix
    assert 'class="cell failed"' in matrix and 'class="cell error"' in matrix
    # infrastructure errors and failures in their own sections, each test with its log folded
    infra = html[html.index('id="infra-errors"') : html.index('id="failures"')]
    failures = html[html.index('id="failures"') : html.index('id="tests"')]
    assert "test_ok[dead]" in infra and "BootError" in infra and "test_wrong[native]" not in infra
    assert "test_wrong[native]" in failures and "test_wrong[microbit]" in failures and "[dead]" not in failures
    assert html.count('<details class="case') >= 9 + 4  # every test once in "all tests", problems again above
    assert "MicroPython v1.9.2" in html  # firmware banner per board
    boards = html[html.index('<table id="boards"') :]
    assert re.search(r'<th scope="row">microbit</th>.*?<td class="num">\d+\.\d\d s</td>', boards, re.S)  # boot time
    assert "ok" in html[html.index("test_ok[native]") :]  # console log inside the test's <details>


def test_page_renders_in_headless_chromium(report, tmp_path):
    png = tmp_path / "report.png"
    shot = _chromium(tmp_path, f"--screenshot={png}", "--window-size=1280,900", report.as_uri())
    assert shot.returncode == 0, shot.stderr[-2000:]
    assert png.exists()
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (1280, 900)
    assert len(data) > 20_000  # a rendered page, not a blank canvas
    assert "Uncaught" not in shot.stderr and "CONSOLE(" not in shot.stderr  # no script errors logged

    dom = _chromium(tmp_path, "--dump-dom", report.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert '<table id="matrix">' in dom.stdout and 'id="infra-errors"' in dom.stdout
    assert "Uncaught" not in dom.stderr


