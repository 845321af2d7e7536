"""Trend charts for the HTML report, from the numbers the run history wrote beside the JUnit file
(TRENDS_FILE, harness/pytest/history.py): outcomes per run, boot time per board, suite durations,
and a strip of each test's last outcomes.

Charts are drawn by pygal as SVG and embedded inline: the report stays one file. pygal adds a
script for its tooltips; it is removed (the report has no JavaScript), which leaves static SVG."""

from __future__ import annotations

import json
from html import escape
from pathlib import Path

TRENDS_FILE = "hil-trends.json"
_OUTCOME_COLOURS = {"passed": "#1a7f37", "failed": "#cf222e", "flaky": "#bf8700", "error": "#8250df",
                    "xfailed": "#9a6700", "skipped": "#afb8c1"}  # fmt: skip
_SERIES = ("#0969da", "#bf3989", "#1a7f37", "#bc4c00", "#8250df", "#57606a", "#cf222e", "#4d2d00")


def load_trends(junit: Path) -> dict | None:
    """The trend numbers beside ``junit``, or None (history off, or not written by this run)."""
    path = junit.with_name(TRENDS_FILE)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("runs") else None


def _svg(chart) -> str:
    """The chart as inline SVG without pygal's <script> elements."""
    tree = chart.render_tree()
    for parent in list(tree.iter()):
        for child in list(parent):
            if isinstance(child.tag, str) and child.tag.rsplit("}", 1)[-1] == "script":
                parent.remove(child)
    from pygal.etree import etree  # lxml or the standard library's, whichever pygal drew with

    return etree.tostring(tree, encoding="unicode")


def _style(colours):
    from pygal.style import Style

    return Style(background="white", plot_background="white", colors=tuple(colours),
                 font_family="DejaVu Sans, sans-serif", title_font_size=14, legend_font_size=12,
                 label_font_size=11)  # fmt: skip


def _chart(kind: str, title: str, colours, y_title: str = ""):
    import pygal

    cls = {"stacked": pygal.StackedBar, "line": pygal.Line}[kind]
    return cls(
        js=[], disable_xml_declaration=True, width=640, height=300, explicit_size=True, title=title,
        style=_style(colours), y_title=y_title, x_title="run", legend_at_bottom=False,
        show_minor_x_labels=True, truncate_legend=30, print_values=False, allow_interruptions=True,
    )  # fmt: skip


def _per_run(series: dict[str, list], run_ids: list[int]) -> dict[str, list]:
    """Series of [run, value] pairs as values aligned on ``run_ids`` (None where a run has none)."""
    aligned = {}
    for name, pairs in sorted(series.items()):
        by_run = {int(run): value for run, value in pairs}
        aligned[name] = [by_run.get(run) for run in run_ids]
    return aligned


def charts_html(data: dict) -> str:
    """The Trends section's charts: outcomes per run, boot time per board, suite durations."""
    runs = data["runs"]
    ids = [int(r["id"]) for r in runs]
    labels = [f"{r['id']}" for r in runs]
    outcomes = _chart("stacked", f"outcomes per run (last {len(runs)})", _OUTCOME_COLOURS.values(), "tests")
    outcomes.x_labels = labels
    most = max((sum(r.get(k, 0) or 0 for k in _OUTCOME_COLOURS) for r in runs), default=0)
    step = max(1, -(-most // 8))
    outcomes.y_labels = list(range(0, most + step, step))  # whole tests, not 0.2 of one
    for key in _OUTCOME_COLOURS:
        outcomes.add(key, [r.get(key, 0) or None for r in runs])
    parts = [("outcomes", outcomes)]
    for key, title, unit in (("boot", "boot time per board", "seconds"), ("suites", "suite durations", "seconds")):
        chart = _chart("line", title, _SERIES, unit)
        chart.x_labels = labels
        for name, values in _per_run(data.get(key) or {}, ids).items():
            chart.add(name, values)
        parts.append((key, chart))
    return "".join(f'<figure class="chart" id="chart-{key}">{_svg(chart)}</figure>' for key, chart in parts)


def strip_html(outcomes: list) -> str:
    """A test's last outcomes, oldest left, as a row of coloured cells (title: run and outcome)."""
    cells = "".join(
        f'<i class="s-{escape(str(o))}" title="run {escape(str(run))}: {escape(str(o))}"></i>' for run, o in outcomes
    )
    return f'<span class="strip">{cells}</span>'


CSS = """
.charts { display: flex; flex-wrap: wrap; gap: 12px; }
figure.chart { margin: 0; border: 1px solid var(--line); border-radius: 6px; }
.strip { display: inline-flex; gap: 1px; vertical-align: middle; margin-left: 8px; }
.strip i { display: inline-block; width: 7px; height: 14px; background: #d0d7de; }
.strip i.s-passed { background: var(--pass); } .strip i.s-failed { background: var(--fail); }
.strip i.s-error { background: var(--error); } .strip i.s-xfailed, .strip i.s-skipped { background: #d4a72c; }
"""
