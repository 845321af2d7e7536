# A deliberately broken TLS echo server, kept to prove the TLS suite catches it
# (tests/integration/test_suite_tls.py): a connection whose handshake failed is never closed (kept
# in a list, as code that forgets close() on its error path), so after its alert the peer waits
# for a close that never comes. Never use it for anything else.
import hil_tls
from hil_tls import *  # noqa: F403 - the same apps, only server() differs

_leaked = []


def _leak(conn, res):
    _leaked.append(conn)


def server(port, cert, **kwargs):
    kwargs["failed"] = _leak
    return hil_tls.server(port, cert, **kwargs)
