"""Flakiness: a test is flaky on a board when, for the same image digest and the same test code,
it both passed and failed within the window of runs. Its flip rate is how often its outcome
changed from one run to the next (0: steady, 1: alternates every run)."""

from __future__ import annotations

from dataclasses import dataclass

from harness.history.records import PastResult

COUNTED = ("passed", "failed")  # an infrastructure error is the board's fault, a skip says nothing


@dataclass
class Flaky:
    nodeid: str
    board: str
    image_digest: str | None
    code_hash: str | None
    outcomes: list[str]  # oldest first
    last_run: int

    @property
    def runs(self) -> int:
        return len(self.outcomes)

    @property
    def failures(self) -> int:
        return self.outcomes.count("failed")

    @property
    def flips(self) -> int:
        return sum(1 for a, b in zip(self.outcomes, self.outcomes[1:], strict=False) if a != b)

    @property
    def flip_rate(self) -> float:
        return self.flips / (self.runs - 1) if self.runs > 1 else 0.0


def flaky_tests(results: list[PastResult]) -> list[Flaky]:
    """The flaky (test, board, image, code) groups among ``results`` (oldest first), most flips first."""
    groups: dict[tuple, Flaky] = {}
    for r in results:
        if r.outcome not in COUNTED:
            continue
        key = (r.nodeid, r.board, r.image_digest, r.code_hash)
        group = groups.setdefault(key, Flaky(*key, outcomes=[], last_run=r.run_id))
        group.outcomes.append(r.outcome)
        group.last_run = max(group.last_run, r.run_id)
    found = [g for g in groups.values() if "passed" in g.outcomes and "failed" in g.outcomes]
    return sorted(found, key=lambda g: (-g.flip_rate, -g.flips, g.nodeid, g.board))


def flaky_keys(results: list[PastResult]) -> dict[tuple[str, str], Flaky]:
    """(nodeid, board) -> its flakiest group: what a run asks of a test it is about to judge."""
    keys: dict[tuple[str, str], Flaky] = {}
    for group in flaky_tests(results):
        keys.setdefault((group.nodeid, group.board), group)
    return keys
