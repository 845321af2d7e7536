# Semihosting calls for ARM boards run under QEMU with -semihosting.
#   exit(code)  -> SYS_EXIT_EXTENDED (0x20): QEMU exits with status `code`
#   write(text) -> SYS_WRITE0 (0x04): text goes to QEMU's semihosting channel (stderr by default,
#                  or `-semihosting-config enable=on,target=native,chardev=ID`)
# Only for QEMU run with -semihosting: without it (or on hardware with no debugger) `bkpt` faults and
# the board hangs.
#
# The assembler source is compiled with exec() so that this module imports cleanly everywhere:
# a port without @micropython.asm_thumb rejects the decorator at compile time (SyntaxError),
# which a try/except in the same module could not catch. Such boards get ImportError instead.
# The inline assembler has no `bkpt` mnemonic, so the instruction `bkpt 0xAB` is emitted as
# its raw Thumb encoding 0xBEAB.

_ASM = """
@micropython.asm_thumb
def _semihost(r0, r1):
    data(2, 0xBEAB)
"""

_SYS_WRITE0 = 0x04
_SYS_EXIT_EXTENDED = 0x20
_ADP_STOPPED_APPLICATION_EXIT = 0x20026

try:
    import micropython

    _ns = {"micropython": micropython}
    exec(_ASM, _ns)
    _semihost = _ns["_semihost"]
    del _ns
except (ImportError, SyntaxError, NameError) as e:
    raise ImportError("hil_semihost needs @micropython.asm_thumb: " + str(e)) from None

try:
    from array import array
except ImportError:
    from uarray import array


def write(text):
    # asm_thumb passes a bytes object as a pointer to its data; SYS_WRITE0 wants a NUL end.
    _semihost(_SYS_WRITE0, bytes(text, "utf-8") + b"\0")


def exit(code=0):
    # The parameter block is two words: the exit reason and the status QEMU exits with.
    _semihost(_SYS_EXIT_EXTENDED, array("I", [_ADP_STOPPED_APPLICATION_EXIT, code & 0xFFFFFFFF]))
