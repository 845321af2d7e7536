# A broken twin of hil_can's echo app (the suite must fail it: tests/integration/test_suite_can.py):
# replies go out in swapped pairs (2nd, 1st, 4th, 3rd, ...), as firmware with two TX mailboxes
# and no ordering would send them.
import hil_can

_held = []


def reply(f):
    if not _held:
        _held.append(f)
        return []
    first = _held.pop()
    return hil_can.answer(f) + hil_can.answer(first)


def echo(bus, count=0, idle_ms=3000, ready="READY"):
    _held.clear()
    return hil_can.echo(bus, count, idle_ms, ready, reply)
