# The board's half of the console's flow control, for a firmware without raw-paste (MicroPython
# before 1.14) whose UART drops what its receive buffer cannot hold (the micro:bit keeps 63 bytes,
# source/microbit/mphalport.cpp). The host runs exec(__import__('hil_paste').take(N, W)) in raw REPL
# and then sends the N bytes of code; this says \x01 each time it has taken another W bytes (and
# at the end) out of the buffer, and the host never has more unacknowledged bytes in flight than
# the buffer holds (targets/*.toml console.rx_buffer, console.ack_every).
try:
    from microbit import uart as _rx  # read() without blocking: None while nothing waits

    _tx = _rx
except ImportError:  # a port with a blocking stdin (the unix port, in the harness's own tests)
    import sys

    _rx = sys.stdin.buffer
    _tx = sys.stdout.buffer


def take(n, every):
    # the micro:bit has no memoryview and no slice assignment: the buffer grows by extend()
    buf = bytearray()
    while len(buf) < n:
        got = len(buf)
        end = min(n, got - got % every + every)  # the end of the window being filled
        part = _rx.read(end - got)
        if part:
            buf.extend(part)
            if len(buf) == end:
                _tx.write(b"\x01")
    return bytes(buf)
