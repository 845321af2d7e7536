"""The static HTML report of a real run (pass, failure, skip, infrastructure error, retry), checked
as a file and in headless Chromium (Debian package `chromium`, installed by `make setup`)."""

from __future__ import annotations

from harness.report.html import write_html


def _html_of(tmp_path, *cases) -> str:
    """The HTML report of a JUnit file holding ``cases``."""
    from junitparser import JUnitXml, TestSuite

    suite = TestSuite("pytest")
    for case in cases:
        suite.add_testcase(case)
    xml = JUnitXml()
    xml.add_testsuite(suite)
    xml.write(str(tmp_path / "j.xml"))
    return write_html(tmp_path / "j.xml", tmp_path / "r.html").read_text()

def test_retried_test_is_marked(tmp_path):
    from junitparser import Properties, Property, TestCase

    # A JUnit case as the plugin writes it after a retry (harness logic only: no board needed).
    case = TestCase("test_x[mps2_an385]", "suites.smoke.test_smoke")
    props = Properties()
    for name, value in (("board", "mps2_an385"), ("hil_retried", "1"),
                        ("hil_first_error", "BoardDied: mps2_an385: QEMU was killed by signal 9")):  # fmt: skip
        props.add_property(Property(name, value))
    case.append(props)
    html = _html_of(tmp_path, case)
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


def test_pairs_view_counts_each_pairing_per_suite_part(tmp_path):
    """Multi-board cases (a "boards" property) get a pairing x suite table beside the board matrix;
    a run without them has none."""
    from junitparser import JUnitXml, Properties, Property, Skipped, TestCase, TestSuite

    suite = TestSuite("pytest")
    rows = [("test_a", "tcp", "mps2_an385", "qemu_x86", None), ("test_b", "tcp", "mps2_an385", "qemu_x86", None),
            ("test_c", "can", "mps2_an385", "qemu_x86", None), ("test_a", "tcp", "qemu_x86", "mps2_an385", None),
            ("test_a", "tcp", "native", "qemu_x86", "pairing native-qemu_x86: board native (server) cannot join")]
    for name, part, server, client, skip in rows:
        case = TestCase(f"{name}[{server}-{client}]", f"suites.multi.test_multi_{part}")
        props = Properties()
        for key, value in (("board", f"{server}-{client}"), ("boards", f"server={server},client={client}")):
            props.add_property(Property(key, value))
        case.append(props)
        if skip:
            case.result = [Skipped(skip)]
        suite.add_testcase(case)
    xml = JUnitXml()
    xml.add_testsuite(suite)
    xml.write(str(tmp_path / "j.xml"))
    html = write_html(tmp_path / "j.xml", tmp_path / "r.html").read_text()
    table = html[html.index('<table id="pairs"') : html.index("</table>", html.index('<table id="pairs"'))]
    assert "<th>multi/can</th><th>multi/tcp</th><th>all</th>" in table
    row = table[table.index('data-pairing="server=mps2_an385,client=qemu_x86"') :].split("</tr>")[0]
    assert ">server: mps2_an385 · client: qemu_x86</th>" in row
    assert row.count('<td class="cell passed">') == 3  # can: 1, tcp: 2, all: 3
    assert '<span class="n-passed" title="passed">2 pass</span>' in row and "3 pass" in row
    assert table.count("<tr>") == 1 + 2  # the header, one row per pairing that ran a case
    # a pairing whose every case skipped: one line with its reason under the table, not a row of skips
    idle = html[html.index('id="pairs-view"') :].split("</section>")[0]
    assert "1 pairings not run" in idle
    assert ('<li data-pairing="native-qemu_x86">native-qemu_x86: '
            "pairing native-qemu_x86: board native (server) cannot join</li>") in idle  # fmt: skip
    matrix = html[html.index('<table id="matrix"') :].split("</table>")[0]
    assert "mps2_an385-qemu_x86" in matrix and "native-qemu_x86" not in matrix  # nor in the board views

    plain = _junit(tmp_path, [("test_a[native]", [("board", "native")])])
    assert 'id="pairs"' not in write_html(plain, tmp_path / "p.html").read_text()


def test_a_failing_tests_timeline_is_its_own_details_after_its_console(tmp_path):
    from junitparser import Failure, Properties, Property, TestCase

    from harness.report.timeline import TIMELINE_HEADER

    case = TestCase("test_echo[mps2_an385]", "suites.can.test_can_flow")
    props = Properties()
    props.add_property(Property("board", "mps2_an385"))
    case.append(props)
    case.result = [Failure("frame #99 lost")]
    case.system_out = "raw REPL; CTRL-B to exit\n" + TIMELINE_HEADER + (
        "t+0.000100 harness    soft reset mps2_an385\n"
        "t+0.001000 host>board \\x05A\\x01<script>\n"
        "t+0.120000 can        board>host 078 [8] 01 02 03 04 05 06 07 08\n"
    )
    html = _html_of(tmp_path, case)
    console = html.index("<pre>raw REPL; CTRL-B to exit\n</pre>")
    timeline = html.index('<details class="timeline" open><summary>evidence timeline')
    assert console < timeline and "(3 lines:" in html
    assert "t+0.001000 host&gt;board \\x05A\\x01&lt;script&gt;" in html  # escaped, one line per event
    assert "t+0.120000 can        board&gt;host 078 [8]" in html
    assert "--- hil evidence timeline" not in html  # the header marks the split, it is not shown
