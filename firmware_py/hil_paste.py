# The board's half of the console's flow control, for a firmware without raw-paste (MicroPython
# before 1.14) whose UART drops what its receive buffer cannot hold (the micro:bit keeps 63 bytes,
# source/microbit/mphalport.cpp). The host runs exec(__import__('hil_paste').take(N, W)) in raw REPL
# and then sends the N bytes of code; this says \x01 each time it has taken another W bytes (and
# at the end) out of the buffer, and the host never has more unacknowledged bytes in flight than
# the buffer holds (targets/*.toml console.rx_buffer, console.ack_every).
# unz(): long code sent compressed, for a console whose every byte is slow (console.compress_min).
import gc

try:
    from microbit import uart as _rx  # read() without blocking: None while nothing waits

    _tx = _rx
except ImportError:  # a port with a blocking stdin (mps2_an385; the unix port in the harness's tests)
    import sys

    # ports/qemu has no sys.stdin.buffer (MICROPY_PY_SYS_STDIO_BUFFER 0): its text stdin reads bytes
    # as they come except \r, which it turns into \n (codepack.py escapes \r for that)
    _rx = getattr(sys.stdin, "buffer", sys.stdin)
    _tx = getattr(sys.stdout, "buffer", sys.stdout)


def take(n, every):
    # One buffer of n bytes, allocated first (after a collection, while the heap is least
    # fragmented) and filled byte by byte: the micro:bit has no memoryview and no slice assignment,
    # and growing a buffer read by read (or window by window) fragmented its 10 KB heap on a loaded
    # host, where reads return a few bytes each (MemoryError on 1 KB of code)
    gc.collect()
    buf = bytearray(n)
    got = 0
    while got < n:
        part = _rx.read(min(n - got, every - got % every))  # at most to the window's end
        if part:
            for b in part:
                buf[got] = b
                got += 1
            if got % every == 0 or got == n:
                _tx.write(b"\x01")
    return bytes(buf)


def unz(n, wbits):
    # The host runs exec(__import__('hil_paste').unz(N, W)) in raw REPL; \x01 says the receiver
    # runs (an image without this module answers ImportError instead, before any byte is sent);
    # then come N bytes: raw deflate (window 2**W) escaped by harness/io/codepack.py, so that
    # neither \x03 (Ctrl-C: the UART turns it into KeyboardInterrupt) nor \r (stdin makes it \n)
    # is on the wire: \x03 \r \x10 go as \x10 and the byte XOR 0x20. Every \x10 starts a pair,
    # so the replaces below cannot misread one. Returns the code compiled as "<stdin>", as plain raw
    # REPL compiles it: tracebacks name the same lines (exec's frame: harness/io/repl.py drops it).
    import io

    import deflate

    _tx.write(b"\x01")
    data = bytearray(n)
    view, got = memoryview(data), 0
    while got < n:
        got += _rx.readinto(view[got:]) or 0
    data, view = bytes(data), None
    if b"\x10" in data:
        data = data.replace(b"\x10\x2d", b"\r").replace(b"\x10\x23", b"\x03").replace(b"\x10\x30", b"\x10")
    src = deflate.DeflateIO(io.BytesIO(data), deflate.RAW, wbits).read()
    data = None
    try:
        return compile(src, "<stdin>", "exec")
    except NameError:  # a port without compile(): exec() runs the source (as "<string>")
        return src
