# A broken twin of hil_can's echo app (the suite must fail it: tests/integration/test_suite_can.py):
# every 100th received frame gets no reply, as firmware that loses frames would.
import hil_can

EVERY = 100
_n = [0]


def reply(f):
    _n[0] += 1
    return [] if _n[0] % EVERY == 0 else hil_can.answer(f)


def echo(bus, count=0, idle_ms=3000, ready="READY"):
    _n[0] = 0
    return hil_can.echo(bus, count, idle_ms, ready, reply)
