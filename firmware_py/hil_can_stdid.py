# A broken twin of hil_can's echo app (the suite must fail it: tests/integration/test_suite_can.py):
# extended (29-bit) ids are cut to 11 bits and answered as standard frames, as firmware that keeps
# ids in a standard-only field would.
import hil_can


def reply(f):
    if f.ext:
        f = hil_can.Frame(f.id & hil_can.SFF_MASK, f.data, False, f.rtr, f.dlc, f.fd, f.brs)
    return hil_can.answer(f)


def echo(bus, count=0, idle_ms=3000, ready="READY"):
    return hil_can.echo(bus, count, idle_ms, ready, reply)
