"""The static HTML report of a real run (pass, failure, skip, infrastructure error, retry), checked
as a file and in headless Chromium (Debian package `chromium`, installed by `make setup`)."""

from __future__ import annotations

from harness.report.html import write_html


def test_retried_test_is_marked(tmp_path):
    from junitparser import JUnitXml, Properties, Property, TestCase, TestSuite

    # A JUnit case as the plugin writes it after a retry (harness logic only: no board needed).
    case = TestCase("test_x[mps2_an385]", "suites.smoke.test_smoke")
    props = Properties()
    for name, value in (("board", "mps2_an385"), ("hil_retried", "1"),
                        ("hil_first_error", "BoardDied: mps2_an385: QEMU was killed by signal 9")):  # fmt: skip
        props.add_property(Property(name, value))
    case.append(props)
    suite = TestSuite("pytest")
    suite.add_testcase(case)
    xml = JUnitXml()
    xml.add_testsuite(suite)
    xml.write(str(tmp_path / "j.xml"))
    html = write_html(tmp_path / "j.xml", tmp_path / "r.html").read_text()
    assert "retried ×1" in html and "QEMU was killed by signal 9" in html and "1 retried" in html




def _junit(tmp_path, cases):
    from junitparser import JUnitXml, Properties, Property, TestCase, TestSuite

    suite = TestSuite("pytest")
    for name, pairs in cases:
        case = TestCase(name, "suites.smoke.test_smoke")
        props = Properties()
        for key, value in pairs:
            props.add_property(Property(key, value))
        case.append(props)
        suite.add_testcase(case)
    xml = JUnitXml()
    xml.add_testsuite(suite)
    xml.write(str(tmp_path / "j.xml"))
    return tmp_path / "j.xml"


def test_boards_table_shows_how_each_board_started_and_snapshot_fallbacks(tmp_path):
    from html.parser import HTMLParser

    note = "snapshot restore failed: QEMU migration failed; cold boot"
    junit = _junit(tmp_path, [
        ("test_a[qemu_x86]", [("board", "qemu_x86"), ("boot_kind", "cold"), ("boot_note", note),
                              ("snapshot_fallbacks", "1")]),
        ("test_b[qemu_x86]", [("board", "qemu_x86"), ("boot_kind", "restored"), ("snapshot_fallbacks", "1")]),
        ("test_a[native]", [("board", "native"), ("boot_kind", "cold")]),
        ("test_a[bench]", [("board", "bench")]),  # a report from before boot kinds: shown as "-"
    ])  # fmt: skip
    html = write_html(junit, tmp_path / "r.html").read_text()

    rows: dict[str, list[str]] = {}

    class Boards(HTMLParser):
        table = row = None
        cell: list[str] | None = None

        def handle_starttag(self, tag, attrs):
            if tag == "table":
                self.table = dict(attrs).get("id")
            elif self.table == "boards" and tag == "tr":
                self.row = []
            elif self.row is not None and tag in ("th", "td"):
                self.cell = []

        def handle_endtag(self, tag):
            if self.row is not None and tag in ("th", "td") and self.cell is not None:
                self.row.append(" ".join("".join(self.cell).split()))
                self.cell = None
            elif tag == "tr" and self.row:
                rows[self.row[0]] = self.row
                self.row = None

        def handle_data(self, data):
            if self.cell is not None:
                self.cell.append(data + " ")

    Boards().feed(html)
    header = rows["board"]
    started = header.index("started")
    assert rows["native"][started] == "cold"
    assert rows["bench"][started] == "-"
    x86 = rows["qemu_x86"][started]
    assert x86.startswith("cold (1 test), restored (1 test)")
    assert "1 snapshot fallback to a cold boot" in x86 and note in x86
