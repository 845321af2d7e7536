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


