"""run-tests.py's skip rules as data, and the one function that applies them to a test file.

Every rule cites where it comes from in MicroPython 1.25.0's tests/run-tests.py (the version the
mps2 build fetches; "L" = line number there). The feature flags come from the board itself: see
mp_features.py, which runs tests/feature_check/*.py through the REPL."""

from __future__ import annotations

from dataclasses import dataclass, field

# L102: values of sys.platform that mean the unix (PC) port
PC_PLATFORMS = ("darwin", "linux", "win32")

# L105-180 platform_tests_to_skip, verbatim (its comments give each entry's reason: e.g. qemu's
# five are "tests that require Cortex-M4"; the unix port, platform "linux", has none)
PLATFORM_SKIPS: dict[str, tuple[str, ...]] = {
    "esp8266": (
        "micropython/viper_args.py",
        "micropython/viper_binop_arith.py",
        "misc/rge_sm.py",
    ),
    "minimal": (
        "basics/class_inplace_op.py",
        "basics/subclass_native_init.py",
        "misc/rge_sm.py",
        "micropython/opt_level.py",
    ),
    "nrf": (
        "basics/io_buffered_writer.py",
        "basics/io_bytesio_cow.py",
        "basics/io_bytesio_ext.py",
        "basics/io_bytesio_ext2.py",
        "basics/io_iobase.py",
        "basics/io_stringio1.py",
        "basics/io_stringio_base.py",
        "basics/io_stringio_with.py",
        "basics/io_write_ext.py",
        "basics/memoryview1.py",
        "extmod/random_basic.py",
        "micropython/opt_level.py",
        "misc/non_compliant.py",
    ),
    "renesas-ra": (
        "extmod/time_time_ns.py",
    ),
    "rp2": (
        "thread/stress_heap.py",
        "thread/thread_lock2.py",
        "thread/thread_lock3.py",
        "thread/thread_shared2.py",
    ),
    "qemu": (
        "inlineasm/thumb/asmfpaddsub.py",
        "inlineasm/thumb/asmfpcmp.py",
        "inlineasm/thumb/asmfpldrstr.py",
        "inlineasm/thumb/asmfpmuldiv.py",
        "inlineasm/thumb/asmfpsqrt.py",
    ),
    "webassembly": (
        "basics/string_format_modulo.py",
        "basics/string_strip.py",
        "extmod/asyncio_basic2.py",
        "extmod/asyncio_cancel_self.py",
        "extmod/asyncio_current_task.py",
        "extmod/asyncio_exception.py",
        "extmod/asyncio_gather_finished_early.py",
        "extmod/asyncio_get_event_loop.py",
        "extmod/asyncio_heaplock.py",
        "extmod/asyncio_loop_stop.py",
        "extmod/asyncio_new_event_loop.py",
        "extmod/asyncio_threadsafeflag.py",
        "extmod/asyncio_wait_for_fwd.py",
        "extmod/binascii_a2b_base64.py",
        "extmod/deflate_compress_memory_error.py",
        "extmod/re_stack_overflow.py",
        "extmod/time_res.py",
        "extmod/vfs_posix.py",
        "extmod/vfs_posix_enoent.py",
        "extmod/vfs_posix_paths.py",
        "extmod/vfs_userfs.py",
        "micropython/emg_exc.py",
        "micropython/extreme_exc.py",
        "micropython/heapalloc_exc_compressed_emg_exc.py",
    ),
    "WiPy": (
        "misc/print_exception.py",
    ),
    "zephyr": (
        "thread/stress_heap.py",
        "thread/thread_lock3.py",
    ),
}

# L795-797: "Some tests shouldn't be run on pyboard" (any platform outside PC_PLATFORMS)
NON_PC_SKIPS = (
    "basics/exception_chain.py",  # warning is not printed
    "micropython/meminfo.py",  # output is very different to PC output
)

# L683-697: @micropython.asm_thumb without Thumb2 (inlineasm_thumb2.py did not print "thumb2")
NO_THUMB2_SKIPS = tuple(
    f"inlineasm/thumb/{n}.py"
    for n in [
        "asmbcc",
        "asmbitops",
        "asmconst",
        "asmdiv",
        "asmfpaddsub",
        "asmfpcmp",
        "asmfpldrstr",
        "asmfpmuldiv",
        "asmfpsqrt",
        "asmit",
        "asmspecialregs",
    ]
)

# L749-756 / L757-766 / L767-771: by float precision (feature_check/float.py prints 0, 30, 32 or 64)
FLOAT_SKIPS: tuple[tuple[int, tuple[str, ...]], ...] = (
    (1, ("extmod/uctypes_le_float.py", "extmod/uctypes_native_float.py", "extmod/uctypes_sizeof_float.py",
         "extmod/json_dumps_float.py", "extmod/json_loads_float.py", "extmod/random_extra_float.py",
         "misc/rge_sm.py")),  # skipped when precision < 1, i.e. == 0
    (32, ("float/float2int_intbig.py", "float/string_format.py", "float/bytes_construct.py",
          "float/bytearray_construct.py", "float/float_format_ints_power10.py")),
    (64, ("float/float_divmod.py", "float/float2int_doubleprec_intbig.py", "float/float_format_ints_doubleprec.py",
          "float/float_parse_doubleprec.py")),
)  # fmt: skip

# L773-781: without complex numbers
NO_COMPLEX_SKIPS = tuple(
    f"float/{n}.py"
    for n in [
        "complex1",
        "complex1_intbig",
        "complex_reverse_op",
        "complex_special_methods",
        "int_big_float",
        "true_value",
        "types",
        "complex_dunder",
    ]
)

# L783-786: without the coverage build's extra_coverage
NO_COVERAGE_SKIPS = ("cmdline/cmd_parsetree.py", "cmdline/repl_sys_ps1_ps2.py", "extmod/ssl_poll.py")

# L724-739: tests that use slice to do their work without testing it
MISC_SLICE_TESTS = frozenset(
    [
        "builtin_range",
        "bytearray1",
        "class_super",
        "containment",
        "errno1",
        "fun_str",
        "generator1",
        "globals_del",
        "memoryview1",
        "memoryview_gc",
        "object1",
        "python34",
        "string_format_modulo",
        "struct_endian",
    ]
)

# L334-343: tests whose .exp is matched line by line as regexes (mp_expect.match_special)
SPECIAL_TESTS = frozenset(
    ("micropython/meminfo.py", "basics/bytes_compare3.py", "basics/builtin_help.py", "thread/thread_exc2.py",
     "ports/esp32/partition_ota.py")
)  # fmt: skip

# L1245-1289: the directories run-tests.py runs by default, per platform (plus inlineasm/<arch>)
UPSTREAM_DIRS = ("basics", "micropython", "misc", "extmod")
_PC_DIRS = ("float", "import", "io", "stress", "unicode", "cmdline", "ports/unix")
PLATFORM_DIRS: dict[str, tuple[str, ...]] = {
    "pyboard": ("float", "stress", "ports/stm32"),
    "mimxrt": ("float", "stress"),
    "renesas-ra": ("float", "ports/renesas-ra"),
    "rp2": ("float", "stress", "thread", "ports/rp2"),
    "esp32": ("float", "stress", "thread"),
    "esp8266": ("float",),
    "minimal": ("float",),
    "samd": ("float",),
    "nrf": ("float",),
    "WiPy": ("ports/cc3200",),
    **dict.fromkeys(PC_PLATFORMS, _PC_DIRS),
    "qemu": ("float", "ports/qemu"),
    "webassembly": ("float", "ports/webassembly"),
}

# Directories the REPL cannot run: run-tests.py runs them as separate unix processes with command
# line options or a pty (L356-413: cmdline/ and feature_check/ are "special" on PC)
REPL_UNFIT_DIRS = ("cmdline", "feature_check")


@dataclass(frozen=True)
class Features:
    """What run-tests.py learns about a target before running tests (L248-272, L628-721)."""

    platform: str
    arch: str | None = None
    inlineasm_arch: str | None = None
    native: bool = True  # native_check.py printed "native"
    int_big: bool = True
    bytearray: bool = True
    set_type: bool = True
    slice: bool = True
    async_: bool = True
    const: bool = True
    revops: bool = True  # reverse_ops.py did not print "TypeError"
    io_module: bool = True
    fstring: bool = True
    thumb2: bool = True
    endian_matches_host: bool = True  # byteorder.py printed what CPython prints
    float_precision: int = 64
    complex: bool = True
    coverage: bool = False
    extra_skips: frozenset[str] = field(default_factory=frozenset)


def platform_dirs(features: Features) -> tuple[str, ...]:
    """run-tests.py's default directories for this target (L1245-1289)."""
    dirs = UPSTREAM_DIRS
    if features.inlineasm_arch:
        dirs += (f"inlineasm/{features.inlineasm_arch}",)
    return dirs + PLATFORM_DIRS.get(features.platform, ())


def skip_set(features: Features, emit: str = "bytecode") -> frozenset[str]:
    """run-tests.py's skip_tests set for this target (L683-834); emit=native rules are not used
    (the harness runs bytecode, run-tests.py's default)."""
    skips: set[str] = set(features.extra_skips)
    if features.inlineasm_arch == "thumb" and not features.thumb2:
        skips.update(NO_THUMB2_SKIPS)
    for below, names in FLOAT_SKIPS:
        if features.float_precision < below:
            skips.update(names)
    if not features.complex:
        skips.update(NO_COMPLEX_SKIPS)
    if not features.coverage:
        skips.update(NO_COVERAGE_SKIPS)
    if features.platform not in PC_PLATFORMS:
        skips.update(NON_PC_SKIPS)
    skips.update(PLATFORM_SKIPS.get(features.platform, ()))
    return frozenset(skips)


def skip_reason(test: str, features: Features) -> str | None:
    """Why run-tests.py would skip ``test`` ("basics/int_big1.py") on this target, or None.

    The name rules are L862-892 (run_one_test); thread/mutate_* on PC is L789-792."""
    if test in skip_set(features):
        return "in run-tests.py's skip list for this target"
    if features.platform in (*PC_PLATFORMS, "rp2") and test.startswith("thread/mutate_"):
        return "thread mutation test on a target without the GIL"
    name = test.rsplit("/", 1)[-1].removesuffix(".py")
    rules = (
        (not features.native, name.startswith(("native_", "viper_")), "no native emitter (native_check.py)"),
        (not features.endian_matches_host, name.endswith("_endian"), "byte order differs from the host's"),
        (not features.int_big, name.startswith("int_big") or name.endswith("_intbig"), "no big integers (int_big.py)"),
        (not features.bytearray, name.startswith("bytearray") or name.endswith("_bytearray"), "no bytearray"),
        (not features.set_type, name.startswith(("set_", "frozenset")) or name.endswith("_set"), "no set type"),
        (not features.slice, "slice" in name or name in MISC_SLICE_TESTS, "no slice"),
        (not features.async_, name.startswith(("async_", "asyncio_")), "no async/await"),
        (not features.const, name.startswith("const"), "no const()"),
        (not features.revops, "reverse_op" in name, "no __rOP__ methods (reverse_ops.py)"),
        (not features.io_module, name.startswith("io_"), "no io module"),
        (not features.fstring, name.startswith("string_fstring"), "no f-strings"),
        (features.inlineasm_arch is None, name.startswith("asm"), "no inline assembler"),
    )
    for missing, applies, why in rules:
        if missing and applies:
            return why
    return None
