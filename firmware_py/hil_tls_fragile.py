# A deliberately broken TLS echo server, kept to prove the TLS suite catches it
# (tests/integration/test_suite_tls.py): the first failed handshake ends the accept loop (the error
# escapes, as in code without an except around wrap_socket), so one hostile peer takes the service
# down. Never use it for anything else.
import hil_tls
from hil_tls import *  # noqa: F403 - the same apps, only server() differs


class HandshakeFailed(Exception):
    pass


def _give_up(conn, res):
    conn.close()
    raise HandshakeFailed(res["error"])


def server(port, cert, **kwargs):
    kwargs["failed"] = _give_up
    return hil_tls.server(port, cert, **kwargs)
