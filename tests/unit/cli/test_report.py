"""`hil report` (board x suite matrix, HTML) and `hil report merge` on small JUnit files."""

from __future__ import annotations

from rich.console import Console as RichConsole

from harness.cli import report
from harness.report.junit import QUARANTINE_PROPERTY, CaseResult, read_cases


def case(board: str, suite: str, name: str, outcome: str, **props: str) -> CaseResult:
    return CaseResult(board=board, suite=suite, classname=f"suites.{suite}.test_x", name=f"{name}[{board}]",
                      outcome=outcome, message="", text="", seconds=0.1, system_out="",
                      props={"board": board, **props})  # fmt: skip


def rows(text: str) -> dict[str, list[str]]:
    """Table body rows by first cell (rich's box drawing: │ between cells)."""
    found = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.split("│")[1:-1]]
        if cells and cells[0]:
            found[cells[0]] = cells[1:]
    return found


def test_print_matrix_has_a_cell_per_board_and_suite():
    cases = [
        case("native", "smoke", "test_a", "passed", boot_seconds="0.5"),
        case("native", "smoke", "test_b", "failed"),
        case("native", "tls", "test_c", "xfailed"),
        case("microbit", "smoke", "test_a", "passed", boot_seconds="2.25"),
        case("microbit", "smoke", "test_b", "skipped"),
        case("qemu", "tls", "test_c", "error"),
        case("qemu", "tls", "test_d", "passed"),
    ]
    console = RichConsole(record=True, width=200)
    report.print_matrix(cases, console)
    text = console.export_text()
    assert "board x suite (pass / fail / error / skip)" in text
    got = rows(text)
    assert got["native"] == ["FAILED 1 pass 1 fail", "SKIPPED 1 xfail", "0.50 s"]
    assert got["microbit"] == ["PASSED 1 pass 1 skip", "-", "2.25 s"]
    assert got["qemu"] == ["-", "ERROR 1 pass 1 error", "-"]
    assert "QUARANTINED" not in text


def test_print_matrix_lists_quarantined_boards():
    message = "board qemu quarantined after 3 infrastructure errors (last: BootError: x)"
    console = RichConsole(record=True, width=200)
    report.print_matrix([case("qemu", "smoke", "test_a", "error", **{QUARANTINE_PROPERTY: message})], console)
    assert f"QUARANTINED {message}" in console.export_text()


def junit(path, *cases: tuple[str, str, str]) -> None:
    """A pytest-like JUnit file: (board, test name, outcome) per case."""
    body = {"passed": "", "failed": '<failure message="boom">trace</failure>',
            "error": '<error message="BootError: x"/>', "skipped": '<skipped type="pytest.skip" message="no"/>'}
    xml = "".join(f'<testcase classname="suites.smoke.test_s" name="{name}[{board}]" time="0.1"><properties>'
                  f'<property name="board" value="{board}"/></properties>{body[outcome]}</testcase>'
                  for board, name, outcome in cases)  # fmt: skip
    path.write_text(f'<testsuites><testsuite name="pytest" hostname="ci">{xml}</testsuite></testsuites>')


def test_report_shows_the_matrix_and_writes_html(hil, tmp_path):
    path = tmp_path / "junit.xml"
    junit(path, ("native", "test_a", "passed"), ("native", "test_b", "failed"), ("microbit", "test_a", "error"))
    for args in (["report", str(path)], ["report", "show", str(path)]):  # `show` is the default subcommand
        status, out, err = hil(*args)
        assert status == 0 and err == ""
        got = rows(out)
        assert got["native"][0] == "FAILED 1 pass 1 fail" and got["microbit"][0] == "ERROR 1 error"
    status, out, _ = hil("report", str(path), "--html", str(tmp_path / "r.html"))
    assert status == 0 and f"HTML: {tmp_path / 'r.html'}" in out
    assert "test_b[native]" in (tmp_path / "r.html").read_text()


def test_report_of_a_missing_or_bad_file_is_one_line(hil, tmp_path):
    status, out, err = hil("report", str(tmp_path / "nope.xml"))
    assert status == 2 and out == ""
    missing = "no such JUnit file; run `hil run` first or give the right path"
    assert err == f"hil: error: {tmp_path / 'nope.xml'}: {missing}\n"
    (tmp_path / "bad.xml").write_text("<testsuites><unclosed")
    status, _, err = hil("report", str(tmp_path / "bad.xml"))
    assert status == 2 and err.startswith(f"hil: error: {tmp_path / 'bad.xml'}: not a JUnit XML file (")
    assert err.count("\n") == 1
    (tmp_path / "empty.xml").write_text("<testsuites/>")
    status, _, err = hil("report", str(tmp_path / "empty.xml"))
    assert status == 2 and "has no test cases" in err


def test_merge_counts_each_case_once_per_board(hil, tmp_path):
    a, b, merged = tmp_path / "a.xml", tmp_path / "b.xml", tmp_path / "out" / "merged.xml"
    junit(a, ("native", "test_a", "passed"), ("native", "test_b", "failed"))
    junit(b, ("microbit", "test_a", "passed"), ("microbit", "test_b", "skipped"), ("native", "test_b", "passed"))
    status, out, err = hil("report", "merge", str(merged), str(a), str(b))
    assert status == 0 and err == ""
    assert f"merged 2 files into {merged}: 4 test cases (microbit: 2, native: 2)" in out
    outcomes = {(c.board, c.name): c.outcome for c in read_cases(merged)}
    assert outcomes == {("native", "test_a[native]"): "passed", ("native", "test_b[native]"): "passed",  # b wins
                        ("microbit", "test_a[microbit]"): "passed", ("microbit", "test_b[microbit]"): "skipped"}
    status, out, _ = hil("report", str(merged))
    assert status == 0 and rows(out)["native"][0] == "PASSED 2 pass"


def test_merge_mistakes_are_one_line(hil, tmp_path):
    a = tmp_path / "a.xml"
    junit(a, ("native", "test_a", "passed"))
    status, _, err = hil("report", "merge", str(a), str(a))
    assert status == 2 and err == f"hil: error: {a}: the output is also an input; write the merge to a new file\n"
    status, _, err = hil("report", "merge", str(tmp_path / "m.xml"), str(a), str(tmp_path / "missing.xml"))
    assert status == 2 and err.startswith(f"hil: error: {tmp_path / 'missing.xml'}: no such JUnit file")
    assert not (tmp_path / "m.xml").exists()
