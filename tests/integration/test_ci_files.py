"""ci/github-actions.yml and ci/gitlab-ci.yml: valid YAML of the right shape, a matrix over every
default board, commands that exist, and artifact paths that match what the commands write —
checked by running each pipeline's own commands (bar `make`) for the native board."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from string import Template

import pytest

from tests.conftest import REPO
from tests.unit.test_ci_files import BIN, GITHUB, GITLAB, github_commands


def _sh(line: str, cwd: Path, env: dict[str, str]) -> None:
    argv = shlex.split(line)
    assert argv[0] == ".venv/bin/hil"
    if argv[1] == "build":
        return  # images are built (and cached) by the other tests' runs
    if argv[1] == "run":
        argv += ["-s", str(REPO / "suites" / "smoke")]  # the full suites belong to `make run`, not here
    expanded = []
    for arg in argv:
        arg = Template(arg).substitute(env) if "$" in arg else arg
        expanded.extend(sorted(str(p.relative_to(cwd)) for p in cwd.glob(arg)) if "*" in arg else [arg])
    out = subprocess.run(expanded, cwd=cwd, env=env, capture_output=True, text=True, timeout=600,
                         start_new_session=True)  # fmt: skip
    assert out.returncode == 0, f"{line}: {out.stdout[-2000:]}{out.stderr[-2000:]}"


@pytest.fixture
def workspace(tmp_path):
    (tmp_path / ".venv").symlink_to(BIN.parent)
    return tmp_path


def test_gitlab_pipeline_artifacts_match_what_hil_writes(workspace, no_leftovers):
    env = os.environ | {"BOARD": "native", "CI_PROJECT_DIR": str(workspace)}
    board = GITLAB["board"]
    for line in board["script"]:
        if not line.startswith("make "):
            _sh(line, workspace, env)
    for path in board["artifacts"]["paths"]:
        assert (workspace / Template(path).substitute(env)).is_dir()
    junit = workspace / Template(board["artifacts"]["reports"]["junit"]).substitute(env)
    assert junit.is_file() and (junit.parent / "report.html").is_file()
    for line in GITLAB["report"]["script"]:
        if not line.startswith("make "):
            _sh(line, workspace, env)
    for path in GITLAB["report"]["artifacts"]["paths"]:
        assert (workspace / path).is_file(), path
    merged = (workspace / GITLAB["report"]["artifacts"]["reports"]["junit"]).read_text()
    assert "test_exec_returns_stdout[native]" in merged and '<property name="board" value="native"' in merged


def test_github_pipeline_artifacts_match_what_hil_writes(workspace, no_leftovers):
    def expand(text: str) -> str:
        return text.replace("${{ matrix.board }}", "native")

    board = GITHUB["jobs"]["board"]
    for line in github_commands("board"):
        if not line.startswith("make "):
            _sh(expand(line), workspace, dict(os.environ))
    (upload,) = [s for s in board["steps"] if s.get("uses", "").startswith("actions/upload-artifact")]
    assert upload["if"] == "always()"
    uploaded = workspace / expand(upload["with"]["path"])
    assert (uploaded / "junit.xml").is_file() and (uploaded / "report.html").is_file()
    # download-artifact puts each artifact in <path>/<artifact name>/
    report = GITHUB["jobs"]["report"]
    (download,) = [s for s in report["steps"] if s.get("uses", "").startswith("actions/download-artifact")]
    name = expand(upload["with"]["name"])
    assert re.fullmatch(download["with"]["pattern"].replace("*", ".*"), name)
    shutil.copytree(uploaded, workspace / download["with"]["path"] / name)
    for line in github_commands("report"):
        if not line.startswith("make "):
            _sh(line, workspace, dict(os.environ))
    (publish,) = [s for s in report["steps"] if s.get("uses", "").startswith("actions/upload-artifact")]
    for path in publish["with"]["path"].split():
        assert (workspace / path).is_file(), path


def test_a_failing_board_job_fails(tmp_path):
    # The board job's `hil run` must exit non-zero when a test fails, or CI would show green.
    (tmp_path / "test_wrong.py").write_text("def test_wrong(dut):\n    assert dut.eval('1 + 1') == 3\n")
    out = subprocess.run([str(BIN / "hil"), "run", "-b", "native", "-s", str(tmp_path / "test_wrong.py"),
                          "--out", str(tmp_path / "out"), "-q"], capture_output=True, text=True, timeout=300,
                         start_new_session=True)  # fmt: skip
    assert out.returncode == pytest.ExitCode.TESTS_FAILED, out.stdout[-2000:]
    assert (tmp_path / "out" / "junit.xml").is_file() and (tmp_path / "out" / "report.html").is_file()
