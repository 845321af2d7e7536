"""A static, self-contained HTML report of a run, from its JUnit file.

One file, no external assets and no JavaScript (CSS only; logs fold with <details>): a board x
suite matrix, boot time and firmware per board, infrastructure errors apart from test failures,
and every test with its timing, message and console log. Open it from a CI artifact as is."""

from __future__ import annotations

import time
from html import escape
from pathlib import Path

from harness.report.junit import (
    BASELINE_PROPERTY,
    FIRST_ERROR_PROPERTY,
    OUTCOMES,
    PAIR_PROPERTY,
    CaseResult,
    board_facts,
    cell_verdict,
    idle_pairings,
    matrix,
    read_cases,
)
from harness.report.timeline import split as split_timeline
from harness.report.trends import CSS as TRENDS_CSS
from harness.report.trends import charts_html, load_trends, strip_html

_CSS = """
:root { --pass: #1a7f37; --fail: #cf222e; --error: #8250df; --skip: #9a6700; --line: #d0d7de; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif; margin: 0; color: #1f2328;
       background: #f6f8fa; }
header { background: #24292f; color: #fff; padding: 16px 24px; }
header h1 { margin: 0 0 4px; font-size: 20px; }
header p { margin: 0; color: #d0d7de; }
main { padding: 16px 24px 48px; max-width: 1400px; }
section { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 12px 16px; margin: 16px 0; }
h2 { font-size: 16px; margin: 0 0 10px; }
table { border-collapse: collapse; }
th, td { border: 1px solid var(--line); padding: 5px 10px; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.cell { font-weight: 600; white-space: nowrap; }
.cell.passed { background: #dafbe1; } .cell.failed { background: #ffebe9; }
.cell.error { background: #fbefff; } .cell.skipped { background: #fff8c5; }
.cell.none { color: #8c959f; }
.n-passed { color: var(--pass); } .n-failed { color: var(--fail); }
.n-error { color: var(--error); } .n-skipped, .n-xfailed { color: var(--skip); }
.badge { display: inline-block; min-width: 58px; text-align: center; border-radius: 10px; padding: 0 8px;
         color: #fff; font-size: 12px; font-weight: 600; }
.badge.passed { background: var(--pass); } .badge.failed { background: var(--fail); }
.badge.error { background: var(--error); } .badge.skipped { background: var(--skip); }
.totals span { margin-right: 16px; }
details { border-top: 1px solid var(--line); padding: 4px 0; }
details:first-of-type { border-top: 0; }
summary { cursor: pointer; list-style-position: inside; }
summary .t { color: #57606a; float: right; font-variant-numeric: tabular-nums; }
summary code { font-size: 13px; }
pre { background: #0d1117; color: #e6edf3; padding: 8px 10px; border-radius: 6px; overflow-x: auto;
      max-height: 420px; white-space: pre-wrap; word-break: break-all; font-size: 12px; }
pre.msg { background: #fff8f8; color: #1f2328; border: 1px solid #ffcecb; }
.retried { color: var(--skip); font-weight: 600; }
details.timeline { border-top: 0; } pre.timeline { max-height: 600px; white-space: pre; word-break: normal; }
.muted { color: #57606a; }
.quarantine { color: var(--fail); font-weight: 600; }
.fallback { color: var(--skip); font-weight: 600; }
.label { display: inline-block; border-radius: 4px; padding: 0 6px; font-size: 12px; font-weight: 700;
         border: 1px solid; }
.label.NEW { color: var(--fail); border-color: var(--fail); }
.label.KNOWN { color: #57606a; border-color: #8c959f; }
.label.FLAKY { color: var(--error); border-color: var(--error); }
.label.FIXED { color: var(--pass); border-color: var(--pass); }
"""


def _cell(cell: dict[str, int] | None) -> str:
    if not cell or not any(cell.values()):
        return '<td class="cell none">-</td>'
    parts = " ".join(
        f'<span class="n-{k}" title="{k}">{cell[k]} {label}</span>'
        for k, label in zip(OUTCOMES, ("pass", "fail", "error", "xfail", "skip"), strict=True)
        if cell.get(k)
    )
    return f'<td class="cell {cell_verdict(cell)}">{parts}</td>'


def _matrix_html(cases: list[CaseResult]) -> str:
    grid = matrix(cases)
    suites = sorted({c.suite for c in cases})
    head = "".join(f"<th>{escape(s)}</th>" for s in suites)
    rows = []
    for board in sorted(grid):
        cells = "".join(_cell(grid[board].get(s)) for s in suites)
        rows.append(f'<tr><th scope="row">{escape(board)}</th>{cells}</tr>')
    return (
        f'<table id="matrix"><thead><tr><th>board \\ suite</th>{head}</tr></thead>'
        f'<tbody>{"".join(rows)}</tbody></table>'
    )


def _pair_part(c: CaseResult) -> str:
    """A multi-board case's column: its suite and test module (multi/tcp for suites.multi.test_multi_tcp)."""
    module = c.classname.rsplit(".", 1)[-1].removeprefix("test_").removeprefix(f"{c.suite}_")
    return f"{c.suite}/{module}" if module and module != c.suite else c.suite


def _pair_label(pairing: str) -> str:
    return " · ".join(r.replace("=", ": ", 1) for r in pairing.split(","))


def _pairs_html(cases: list[CaseResult], idle: dict[str, str]) -> str:
    """Pairing x suite part for multi-board tests: a row per pairing (its boards by role), the
    same cells as the board x suite matrix; pairings that ran nothing (``idle``) one line each
    under it, with the reason. Empty when the run had no multi-board test."""
    grid: dict[str, dict[str, dict[str, int]]] = {}
    for c in cases:
        if (pairing := c.props.get(PAIR_PROPERTY)) and c.board not in idle:
            cell = grid.setdefault(pairing, {}).setdefault(_pair_part(c), dict.fromkeys(OUTCOMES, 0))
            cell[c.outcome] += 1
    if not grid and not idle:
        return ""
    items = "".join(f'<li data-pairing="{escape(p)}">{escape(p)}: {escape(r)}</li>' for p, r in sorted(idle.items()))
    note = f'<details class="muted"><summary>{len(idle)} pairings not run</summary><ul>{items}</ul></details>'
    if not grid:
        return f'<section id="pairs-view"><h2>Pairs × suite</h2>{note}</section>'
    parts = sorted({part for row in grid.values() for part in row})
    head = "".join(f"<th>{escape(p)}</th>" for p in parts)
    rows = []
    for pairing in sorted(grid):
        label = escape(_pair_label(pairing))
        total = dict.fromkeys(OUTCOMES, 0)
        for cell in grid[pairing].values():
            for k in OUTCOMES:
                total[k] += cell[k]
        cells = "".join(_cell(grid[pairing].get(p)) for p in parts)
        rows.append(f'<tr><th scope="row" data-pairing="{escape(pairing)}">{label}</th>{cells}{_cell(total)}</tr>')
    return (
        '<section id="pairs-view"><h2>Pairs × suite</h2><p class="muted">Multi-board tests: one row per pairing of '
        f'boards (role: board), each with its own board instances.</p><table id="pairs"><thead><tr><th>pairing</th>'
        f'{head}<th>all</th></tr></thead><tbody>{"".join(rows)}</tbody></table>{note if idle else ""}</section>'
    )


def _boards_html(cases: list[CaseResult]) -> str:
    facts = board_facts(cases)
    rows = []
    for board in sorted(facts):
        f = facts[board]
        mine = [c for c in cases if c.board == board]
        boot = f.get("boot_seconds")
        total = sum(c.seconds for c in mine)
        note = f'<div class="quarantine">{escape(f["quarantined"])}</div>' if "quarantined" in f else ""
        boot_cell = f"{float(boot):.2f} s" if boot else "-"
        rows.append(
            f'<tr><th scope="row">{escape(board)}</th><td>{escape(f.get("micropython_version", "-"))}</td>'
            f'<td>{escape(f.get("banner", "-"))}{note}</td><td><code>{escape(f.get("image_digest", "-"))}</code></td>'
            f'<td class="num">{boot_cell}</td>{_boot_kind_cell(mine)}'
        )
        rows[-1] += f'<td class="num">{len(mine)}</td><td class="num">{total:.2f} s</td></tr>'
    return (
        '<table id="boards"><thead><tr><th>board</th><th>MicroPython</th><th>banner</th><th>image</th>'
        f'<th>boot</th><th>started</th><th>tests</th><th>test time</th></tr></thead><tbody>{"".join(rows)}</tbody>'
        "</table>"
    )


def _boot_kind_cell(mine: list[CaseResult]) -> str:
    """How the board's runs started (restored from a snapshot or cold), and every snapshot fallback
    with its reason: a snapshot that silently stops restoring shows here, not only in a log line."""
    kinds: dict[str, int] = {}
    notes: list[str] = []
    fallbacks = 0
    for c in mine:
        if c.props.get("boot_kind"):
            kinds[c.props["boot_kind"]] = kinds.get(c.props["boot_kind"], 0) + 1
        note = c.props.get("boot_note", "")
        if note.startswith("snapshot restore failed") and note not in notes:
            notes.append(note)
        fallbacks = max(fallbacks, int(c.props.get("snapshot_fallbacks", "0") or 0))
    if not kinds:
        return '<td class="muted">-</td>'
    text = ", ".join(
        escape(k) if len(kinds) == 1 else f"{escape(k)} ({n} test{'s' if n != 1 else ''})"
        for k, n in sorted(kinds.items())
    )
    if fallbacks:
        label = f"{fallbacks} snapshot fallback{'s' if fallbacks > 1 else ''} to a cold boot"
        text += f'<div class="fallback">{label}</div>'
        text += "".join(f'<div class="muted">{escape(n)}</div>' for n in notes)
    return f'<td class="boot-kind">{text}</td>'


def _case_html(c: CaseResult, strips: dict[str, list] | None = None) -> str:
    retried = ""
    if c.retried:
        first = c.props.get(FIRST_ERROR_PROPERTY, "")
        retried = f' <span class="retried" title="{escape(first)}">retried ×{escape(c.props["hil_retried"])}</span>'
    strip = (strips or {}).get(f"{c.classname}::{c.name}")
    if strip:  # the test's last outcomes across recorded runs (harness/report/trends.py)
        retried += strip_html(strip)
    label = c.props.get(BASELINE_PROPERTY)
    if label:  # against the run's --baseline (harness/history/baseline.py says what each means)
        tip = escape(_LABEL_TITLES.get(label, ""))
        retried += f' <span class="label {escape(label)}" title="{tip}">{escape(label)}</span>'
    body = []
    if c.message or c.text:
        body.append(f'<pre class="msg">{escape(c.message)}\n{escape(c.text)}</pre>')
    if c.retried:
        body.append(
            '<p class="muted">first attempt ended with an infrastructure error; retried on a fresh board:</p>'
            f'<pre class="msg">{escape(c.props.get(FIRST_ERROR_PROPERTY, ""))}</pre>'
        )
    console, timeline = split_timeline(c.system_out)
    if console:
        body.append(f"<p class=\"muted\">console</p><pre>{escape(console)}</pre>")
    if timeline:  # console both ways, harness events, packets, CAN frames: one time order (harness/pytest/evidence.py)
        lines = timeline.count("\n")
        body.append(f'<details class="timeline" open><summary>evidence timeline <span class="muted">({lines} lines: '
                    f'console both ways, harness events, packets, CAN frames)</span></summary>'
                    f'<pre class="timeline">{escape(timeline)}</pre></details>')
    if not body:
        body.append('<p class="muted">no output</p>')
    return (
        f'<details class="case {c.outcome}"><summary><span class="badge {c.outcome}">{c.outcome}</span> '
        f"<code>{escape(c.name)}</code> <span class=\"muted\">{escape(c.board)} · {escape(c.suite)}</span>{retried}"
        f'<span class="t">{c.seconds:.3f} s</span></summary>{"".join(body)}</details>'
    )


_LABEL_TITLES = {
    "NEW": "fails now, passed in the baseline: a regression",
    "KNOWN": "failed in the baseline too",
    "FLAKY": "history says this test both passes and fails on this board, image and test code",
    "FIXED": "failed in the baseline, passes now",
}


def _labels_html(cases: list[CaseResult]) -> str:
    """The baseline's verdicts in the summary: how many of each, NEW first."""
    counts: dict[str, int] = {}
    for c in cases:
        if label := c.props.get(BASELINE_PROPERTY):
            counts[label] = counts.get(label, 0) + 1
    if not counts:
        return ""
    parts = " ".join(f'<span class="label {k}">{counts[k]} {k}</span>' for k in _LABEL_TITLES if k in counts)
    return f'<p id="baseline-labels">against the baseline: {parts}</p>'


def _trends_section(trends: dict | None) -> str:
    if not trends:
        return ""
    return (
        '<section id="trends"><h2>Trends</h2><p class="muted">From the run history (the newest runs up to this one; '
        'flaky: failures of tests that both passed and failed on the same board, image and test code).</p>'
        f'<div class="charts">{charts_html(trends)}</div></section>'
    )


def render(cases: list[CaseResult], source: str = "", title: str = "hil report", trends: dict | None = None) -> str:
    """The page; ``trends``: the run history's numbers (load_trends) for the Trends section and strips."""
    strips = (trends or {}).get("strips") or {}
    counts = {k: sum(1 for c in cases if c.outcome == k) for k in OUTCOMES}
    errors = [c for c in cases if c.outcome == "error"]
    failures = [c for c in cases if c.outcome == "failed"]
    retried = [c for c in cases if c.retried]
    totals = "".join(
        f'<span class="n-{k}">{counts[k]} {label}</span>'
        for k, label in zip(OUTCOMES, ("passed", "failed", "errors", "expected failures", "skipped"), strict=True)
    )
    idle = idle_pairings(cases)
    shown = [c for c in cases if c.board not in idle]  # the board views; idle pairings: one line each
    by_board = []
    for board in sorted({c.board for c in shown}):
        mine = sorted((c for c in shown if c.board == board), key=lambda c: (c.suite, c.classname, c.name))
        by_board.append(
            f'<h3>{escape(board)}</h3><div class="cases">{"".join(_case_html(c, strips) for c in mine)}</div>'
        )
    none = '<p class="muted">none</p>'
    generated = time.strftime("%Y-%m-%d %H:%M:%S")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title><style>{_CSS}{TRENDS_CSS}</style></head>
<body><header><h1>{escape(title)}</h1><p>{len(cases)} tests on {len({c.board for c in cases})} boards ·
generated {generated}{" from " + escape(source) if source else ""}</p></header>
<main>
<section id="summary"><h2>Summary</h2><p class="totals">{totals}
<span class="retried">{len(retried)} retried</span></p>{_labels_html(cases)}</section>
{_trends_section(trends)}<section><h2>Board × suite</h2>{_matrix_html(shown)}</section>
{_pairs_html(cases, idle)}
<section><h2>Boards</h2>{_boards_html(shown)}</section>
<section id="infra-errors"><h2>Infrastructure errors ({len(errors)})</h2>
<p class="muted">The board or its plumbing broke (did not boot, died, port vanished): not a verdict on the firmware.</p>
{"".join(_case_html(c, strips) for c in errors) or none}</section>
<section id="failures"><h2>Test failures ({len(failures)})</h2>
<p class="muted">The firmware answered wrongly.</p>
{"".join(_case_html(c, strips) for c in failures) or none}</section>
<section id="tests"><h2>All tests</h2>{"".join(by_board) or none}</section>
</main></body></html>
"""


def write_html(junit: Path, out: Path, title: str = "hil report", cases: list[CaseResult] | None = None) -> Path:
    """The report of ``junit`` (``cases``: its cases, when the caller has read them already)."""
    cases = read_cases(junit) if cases is None else cases
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(cases, source=str(junit), title=title, trends=load_trends(junit)), encoding="utf-8")
    return out
