"""ci/github-actions.yml and ci/gitlab-ci.yml: valid YAML of the right shape, a matrix over every
default board, commands that exist, and artifact paths that match what the commands write —
checked by running each pipeline's own commands (bar `make`) for the native board."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import yaml

from harness.config.boards import load_all
from tests.conftest import REPO

CI = REPO / "ci"


BIN = Path(sys.executable).parent


GITHUB = yaml.safe_load((CI / "github-actions.yml").read_text())


GITLAB = yaml.safe_load((CI / "gitlab-ci.yml").read_text())


def default_boards() -> set[str]:
    return {name for name, spec in load_all(REPO / "targets").items() if spec.default}


def github_commands(job: str) -> list[str]:
    return [line for step in GITHUB["jobs"][job]["steps"] if "run" in step for line in step["run"].splitlines()]


def gitlab_commands(job: str) -> list[str]:
    return list(GITLAB[job]["script"])


def all_commands() -> list[str]:
    return [*github_commands("board"), *github_commands("report"), *gitlab_commands("board"),
            *gitlab_commands("report")]  # fmt: skip



def test_matrix_covers_every_default_board():
    github = set(GITHUB["jobs"]["board"]["strategy"]["matrix"]["board"])
    (entry,) = GITLAB["board"]["parallel"]["matrix"]
    gitlab = set(entry["BOARD"])
    assert default_boards() <= github, f"missing in ci/github-actions.yml: {default_boards() - github}"
    assert default_boards() <= gitlab, f"missing in ci/gitlab-ci.yml: {default_boards() - gitlab}"
    known = set(load_all(REPO / "targets"))
    assert github <= known and gitlab <= known  # no board without a target file
    assert GITHUB["jobs"]["board"]["strategy"]["fail-fast"] is False  # one broken board keeps the others


def test_pipeline_shape():
    # GitHub: the report job waits for every board job and runs even when some failed
    report = GITHUB["jobs"]["report"]
    assert report["needs"] == "board" and report["if"] == "always()"
    assert all("timeout-minutes" in job for job in GITHUB["jobs"].values())
    assert {True, "push"} & set(GITHUB.get("on", GITHUB.get(True, {})))  # YAML 1.1 reads `on` as True
    # GitLab: stages in order, report after board with its artifacts, JUnit reports wired
    assert GITLAB["stages"] == ["boards", "report"]
    assert GITLAB["board"]["stage"] == "boards" and GITLAB["report"]["stage"] == "report"
    assert GITLAB["report"]["needs"] == [{"job": "board", "artifacts": True}]
    assert GITLAB["report"]["when"] == "always" and GITLAB["board"]["artifacts"]["when"] == "always"
    assert GITLAB["board"]["artifacts"]["reports"]["junit"] == "hil-out/$BOARD/junit.xml"
    assert GITLAB["report"]["artifacts"]["reports"]["junit"] == "hil-out/junit.xml"
    assert all("timeout" in GITLAB[job] for job in ("board", "report"))


def test_make_targets_exist():
    makefile = (REPO / "Makefile").read_text()
    targets = set(re.findall(r"^([A-Za-z][\w-]*):", makefile, re.M))
    used = {shlex.split(c)[1] for c in all_commands() if c.startswith("make ")}
    assert "setup" in used  # installs the way the README does
    assert used <= targets, f"make targets used by ci/ but not in the Makefile: {used - targets}"
    out = subprocess.run(["make", "-n", *sorted(used)], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr


def _help(*args: str) -> str:
    out = subprocess.run([str(BIN / "hil"), *args, "--help"], capture_output=True, text=True, timeout=60,
                         env=os.environ | {"COLUMNS": "200"})  # fmt: skip
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_hil_commands_exist():
    used = [shlex.split(c) for c in all_commands() if c.startswith(".venv/bin/hil ")]
    assert {argv[1] for argv in used} == {"build", "run", "report"}
    top = _help()
    for command in ("build", "run", "report"):
        assert re.search(rf"│ {command}\s", top), f"`hil {command}` does not exist"
    assert re.search(r"│ merge\s", _help("report"))
    run_help = _help("run")
    for argv in used:
        if argv[1] == "run":
            for option in (a for a in argv[2:] if a.startswith("-") and a != "-q"):  # -q goes to pytest
                assert option in run_help, f"`hil run` has no option {option}"


