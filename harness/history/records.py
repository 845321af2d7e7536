"""What a run hands to the recorder, and what queries give back: plain dataclasses, no database."""

from __future__ import annotations

from dataclasses import dataclass, field

OUTCOMES = ("passed", "failed", "error", "xfailed", "skipped")
PROBLEMS = ("failed", "error")  # the outcomes a baseline labels (a non-pass that is not expected)


@dataclass
class RunInfo:
    started: float
    host: str = ""
    label: str = ""
    project: str = ""
    git_commit: str | None = None
    git_dirty: bool | None = None
    options: list[str] = field(default_factory=list)
    finished: float | None = None
    exit_status: int | None = None
    baseline: str | None = None


@dataclass
class BoardInfo:
    name: str
    image_digest: str | None = None
    micropython_version: str | None = None
    banner: str | None = None
    boot_seconds: float | None = None


@dataclass
class TestResult:
    __test__ = False  # not a pytest test class

    nodeid: str
    board: str
    outcome: str
    duration: float = 0.0
    retried: bool = False
    first_error: str | None = None
    code_hash: str | None = None
    image_digest: str | None = None
    label: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.nodeid, self.board)


@dataclass
class PastResult:
    """One recorded result with its run's facts, as the queries return it."""

    run_id: int
    started: float
    label: str
    nodeid: str
    board: str
    outcome: str
    duration: float
    retried: bool
    first_error: str | None
    code_hash: str | None
    image_digest: str | None
    baseline_label: str | None = None
