"""One case per tests/multi_net file per pairing of boards: instance0 on the first board, instance1
on the second, the host relaying as run-multitests.py does (see conftest.py)."""

from __future__ import annotations

import difflib

import pytest
from mm_instances import BoardInstance, data_files, put_data_files
from mm_protocol import instance_count, run_test
from mm_truth import expected_output

DIFF_LINES = 60
TOTAL_FACTOR = 8  # a whole run may last this many silence limits (upstream: no bound)


def _diff(expected: str, actual: str) -> str:
    lines = list(difflib.unified_diff(expected.splitlines(), actual.splitlines(), "expected", "boards", lineterm=""))
    more = f"\n... ({len(lines) - DIFF_LINES} more diff lines)" if len(lines) > DIFF_LINES else ""
    return "\n".join(lines[:DIFF_LINES]) + more


@pytest.mark.roles("instance0", "instance1")
@pytest.mark.requires("net")
def test_multitest(duts, mm_test, mm_tests_dir, mm_timeout):
    path = mm_tests_dir / mm_test
    source = path.read_bytes()
    roles = list(duts)
    n = instance_count(source.decode("utf-8", "replace"))
    if n != len(roles):
        pytest.skip(f"{mm_test} has {n} instances; this suite runs pairs")
    # before the boards run it: the CPython truth (no .exp) must not be taken while they hold ports
    expected = expected_output(path)
    files = data_files(path.parent, source)
    for role in roles:
        if files and duts[role].board.spec.capabilities.has("fs"):
            put_data_files(duts[role].board, files)
    instances = [BoardInstance(duts[role], mm_test) for role in roles]
    outcome = run_test(source, instances, [duts[role].ip for role in roles], read_timeout=mm_timeout,
                       total_timeout=mm_timeout * TOTAL_FACTOR)  # fmt: skip
    for metric in outcome.metrics:
        print(f"{mm_test}: {metric}")  # L545-548: figures, not verdicts
    if outcome.skip:
        who = next((f"instance{i} ({duts[r].name})" for i, r in enumerate(roles)
                    if any(t[1] == i and t[2] == "SKIP" for t in outcome.trace)), "an instance")  # fmt: skip
        pytest.skip(f"{who} printed SKIP")
    if outcome.output != expected:
        source_name = "its .exp file" if path.with_name(path.name + ".exp").is_file() else "the CPython run"
        pytest.fail(f"{mm_test}: output differs from {source_name}\n{_diff(expected, outcome.output)}", pytrace=False)
