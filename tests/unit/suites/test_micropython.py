"""The pure helpers of suites/micropython: run-tests.py's skip rules as data, its feature-check
reading, its expected-output and special-test matching, and the test selection."""

from __future__ import annotations

import importlib
import sys
import textwrap
from types import SimpleNamespace

import pytest

from tests.conftest import REPO

SUITE = REPO / "suites" / "micropython"


@pytest.fixture(scope="module")
def mp():
    sys.path.insert(0, str(SUITE))
    try:
        names = ("mp_rules", "mp_features", "mp_expect", "mp_tree", "mp_run")
        yield SimpleNamespace(**{n.removeprefix("mp_"): importlib.import_module(n) for n in names})
    finally:
        sys.path.remove(str(SUITE))


# --- mp_rules: which files run-tests.py skips ---------------------------------------------------


def test_qemu_skips_pc_only_and_cortex_m4_tests(mp):
    f = mp.rules.Features(platform="qemu", arch="armv7m", inlineasm_arch="thumb")
    assert mp.rules.skip_reason("basics/exception_chain.py", f)
    assert mp.rules.skip_reason("micropython/meminfo.py", f)
    assert mp.rules.skip_reason("inlineasm/thumb/asmfpaddsub.py", f)
    assert mp.rules.skip_reason("inlineasm/thumb/asmbcc.py", f) is None  # Thumb2 is there
    assert mp.rules.skip_reason("basics/int1.py", f) is None


def test_linux_runs_pc_tests_but_skips_thread_mutation(mp):
    f = mp.rules.Features(platform="linux", arch="x64")
    assert mp.rules.skip_reason("basics/exception_chain.py", f) is None
    assert mp.rules.skip_reason("thread/mutate_dict.py", f)
    assert mp.rules.skip_reason("basics/asm_foo.py", f)  # no inline assembler on x64


@pytest.mark.parametrize(
    ("flag", "test"),
    [
        ("native", "micropython/viper_args.py"),
        ("native", "micropython/native_misc.py"),
        ("int_big", "basics/int_big_add.py"),
        ("int_big", "basics/builtin_pow3_intbig.py"),
        ("bytearray", "basics/bytearray_add.py"),
        ("set_type", "basics/frozenset1.py"),
        ("set_type", "basics/op_error_set.py"),
        ("slice", "basics/list_slice.py"),
        ("slice", "basics/memoryview1.py"),  # uses slice without testing it
        ("async_", "extmod/asyncio_basic.py"),
        ("const", "micropython/const2.py"),
        ("revops", "basics/class_reverse_op.py"),
        ("io_module", "basics/io_stringio1.py"),
        ("fstring", "basics/string_fstring.py"),
        ("endian_matches_host", "basics/struct_endian.py"),
    ],
)
def test_a_missing_feature_skips_its_tests_by_name(mp, flag, test):
    base = mp.rules.Features(platform="qemu", inlineasm_arch="thumb")
    assert mp.rules.skip_reason(test, base) is None
    assert mp.rules.skip_reason(test, mp.rules.Features(platform="qemu", inlineasm_arch="thumb", **{flag: False}))


def test_float_precision_and_complex_rules(mp):
    f32 = mp.rules.Features(platform="qemu", float_precision=32, complex=False)
    assert mp.rules.skip_reason("float/float_divmod.py", f32)  # needs double precision
    assert mp.rules.skip_reason("float/string_format.py", f32) is None  # fine at 32 bits
    assert mp.rules.skip_reason("float/complex1.py", f32)
    f0 = mp.rules.Features(platform="qemu", float_precision=0)
    assert mp.rules.skip_reason("extmod/json_dumps_float.py", f0)
    assert mp.rules.skip_reason("extmod/json_dumps_float.py", mp.rules.Features(platform="qemu")) is None


def test_thumb_without_thumb2_skips_thumb2_tests(mp):
    f = mp.rules.Features(platform="qemu", inlineasm_arch="thumb", thumb2=False)
    assert mp.rules.skip_reason("inlineasm/thumb/asmit.py", f)


def test_platform_dirs_follow_run_tests(mp):
    qemu = mp.rules.platform_dirs(mp.rules.Features(platform="qemu", inlineasm_arch="thumb"))
    assert qemu == ("basics", "micropython", "misc", "extmod", "inlineasm/thumb", "float", "ports/qemu")
    assert "ports/unix" in mp.rules.platform_dirs(mp.rules.Features(platform="linux"))


# --- mp_features: reading the feature checks' answers -------------------------------------------


def _feature_dir(tmp_path):
    d = tmp_path / "feature_check"
    d.mkdir()
    for name in ["target_info", "inlineasm_rv32", "inlineasm_thumb", "inlineasm_xtensa", "inlineasm_thumb2",
                 "reverse_ops", "byteorder", "float", *(f.removesuffix(".py") for f, _ in
                 __import__("mp_features").PRESENT_IF.values())]:  # fmt: skip
        (d / f"{name}.py").write_text(f"# {name}\n")
    return d


def _answers(table: dict[str, str]):
    def run(source: str) -> str:
        name = source.split()[1]
        return table.get(name, "Traceback ...\nNameError: x\nCRASH")

    return run


def test_probe_reads_a_cortex_m3_board(mp, tmp_path):
    answers = {"target_info": "qemu armv7m\n", "inlineasm_thumb": "thumb\n", "inlineasm_thumb2": "thumb2\n",
               "native_check": "native\n", "int_big": "1" + "0" * 45 + "\n", "bytearray": "bytearray\n",
               "set_check": "{1}\n", "slice": "slice\n", "async_check": "async\n", "const": "1\n",
               "reverse_ops": "", "io_module": "io\n", "fstring": "a=1\n", "byteorder": "little\n",
               "float": "32\n", "complex": "complex\n", "coverage": "no\n"}  # fmt: skip
    f = mp.features.probe(_answers(answers), _feature_dir(tmp_path), host_byteorder="little")
    assert (f.platform, f.arch, f.inlineasm_arch, f.thumb2) == ("qemu", "armv7m", "thumb", True)
    assert f.native and f.int_big and f.revops and f.complex and f.endian_matches_host
    assert not f.coverage and f.float_precision == 32


def test_probe_reads_a_minimal_board(mp, tmp_path):
    answers = {"target_info": "minimal None\n", "reverse_ops": "TypeError\n", "byteorder": "big\n", "float": "0\n"}
    f = mp.features.probe(_answers(answers), _feature_dir(tmp_path), host_byteorder="little")
    assert (f.platform, f.arch, f.inlineasm_arch) == ("minimal", None, None)
    assert not (f.native or f.int_big or f.revops or f.complex or f.endian_matches_host or f.fstring)
    assert f.float_precision == 0


def test_probe_refuses_a_board_whose_target_info_crashed(mp, tmp_path):
    with pytest.raises(ValueError, match="cannot detect platform"):
        mp.features.probe(_answers({}), _feature_dir(tmp_path))


# --- mp_run: what a crash looks like -------------------------------------------------------------


def test_run_source_records_output_traceback_and_crash(mp):
    from harness.io.repl import parse_board_exception

    class Board:
        def exec(self, source, timeout=None):
            exc = parse_board_exception('Traceback (most recent call last):\r\n  File "<stdin>"\r\nValueError: x\r\n')
            exc.output = "before\n"
            raise exc

    expected = 'before\nTraceback (most recent call last):\n  File "<stdin>"\nValueError: x\nCRASH'
    assert mp.run.run_source(Board(), "x") == expected


# --- mp_expect: expected output and special tests ----------------------------------------------


def test_exp_file_is_the_expected_output(mp, tmp_path):
    test = tmp_path / "t.py"
    test.write_text("print(1)\n")
    (tmp_path / "t.py.exp").write_bytes(b"one\r\n")
    assert mp.expect.expected_output(test) == "one\n"


def test_cpython_gives_the_expected_output_without_exp(mp, tmp_path):
    test = tmp_path / "c.py"
    test.write_text("import os\nprint(sorted(os.listdir('.')))\n")  # runs in the test's directory
    assert mp.expect.expected_output(test) == "['c.py']\n"
    bad = tmp_path / "bad.py"
    bad.write_text("print('a')\nraise ValueError('v')\n")
    out = mp.expect.expected_output(bad)
    assert out.startswith("CPYTHON3 CRASH:\na\n") and "ValueError: v" in out


def test_regex_escapes_as_run_tests_converts_them(mp):
    assert mp.expect.convert_regex_escapes("a.b(\\d+)\n") == "a\\.b\\(d\\+\\)\r*\n"
    assert mp.expect.convert_regex_escapes("mem: \\.\\+\n") == "mem: .+\r*\n"


def test_match_special_replaces_matching_lines_and_skips_runs(mp):
    exp = textwrap.dedent("""\
        mem: \\.\\+
        ########
        end
    """)
    assert mp.expect.match_special("mem: 1234\nnoise\nmore\nend\n", exp) == exp
    assert mp.expect.match_special("mem: 1234\nnoise\n", exp) != exp  # "end" never came
    assert mp.expect.match_special("other\nend\n", exp) != exp


def test_unittest_summary_decides(mp):
    ok = "test_a (T) ... ok\n" + "-" * 70 + "\nRan 2 tests\n\nOK\n"
    bad = "x\n" + "-" * 70 + "\nRan 2 tests\n\nFAILED (failures=1, errors=0)\n"
    assert mp.expect.unittest_result(ok).passed
    assert not mp.expect.unittest_result(bad).passed
    assert mp.expect.unittest_result("plain output\n") is None
    assert mp.expect.needs_unittest("Traceback:\nImportError: no module named 'unittest'\nCRASH")


# --- mp_tree: selection ------------------------------------------------------------------------


def _tree(tmp_path):
    tests = tmp_path / "tests"
    for d in ("basics", "float", "cmdline", "ports/qemu", "feature_check"):
        (tests / d).mkdir(parents=True)
        (tests / d / "a.py").write_text("")
    (tests / "run-tests.py").write_text("")
    return tests


def test_selection_parsing_and_default(mp):
    assert mp.tree.parse_selection(None) == ("basics",)
    assert mp.tree.parse_selection(" basics, float/ ,basics") == ("basics", "float")


def test_selected_files_and_bad_names(mp, tmp_path):
    tests = _tree(tmp_path)
    assert mp.tree.test_files(tests, ("float", "basics")) == ["basics/a.py", "float/a.py"]
    assert "ports/qemu/a.py" in mp.tree.test_files(tests, ("upstream",))
    assert "cmdline/a.py" not in mp.tree.test_files(tests, ("upstream",))
    with pytest.raises(ValueError, match="no such directory"):
        mp.tree.check_dirs(tests, ("basic",))
    with pytest.raises(ValueError, match="separate unix processes"):
        mp.tree.check_dirs(tests, ("cmdline",))


def test_upstream_runs_only_the_platforms_dirs(mp):
    qemu_dirs = ("basics", "float", "ports/qemu")
    assert mp.tree.selected_for("ports/qemu/a.py", ("upstream",), qemu_dirs)
    assert not mp.tree.selected_for("ports/unix/a.py", ("upstream",), qemu_dirs)
    assert mp.tree.selected_for("ports/unix/a.py", ("upstream", "ports/unix"), qemu_dirs)  # named: runs


def test_source_override_must_be_a_micropython_tree(mp, tmp_path, monkeypatch):
    monkeypatch.setenv("HIL_MP_SRC", str(tmp_path))
    with pytest.raises(mp.tree.TreeMissing, match=r"HIL_MP_SRC=.*no tests/run-tests\.py"):
        mp.tree.tests_dir()
    _tree(tmp_path)
    assert mp.tree.tests_dir() == tmp_path / "tests"
