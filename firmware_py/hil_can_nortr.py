# A broken twin of hil_can's echo app (the suite must fail it: tests/integration/test_suite_can.py):
# a remote request is answered as a data frame of DLC zero bytes, as a driver that drops the RTR
# flag would send it.
import hil_can


def reply(f):
    if f.rtr:
        f = hil_can.Frame(f.id, bytes(f.dlc), f.ext, False, None, f.fd, f.brs)
    return hil_can.answer(f)


def echo(bus, count=0, idle_ms=3000, ready="READY"):
    return hil_can.echo(bus, count, idle_ms, ready, reply)
