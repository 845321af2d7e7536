# A deliberately broken TLS echo server, kept to prove the TLS suite catches it
# (tests/integration/test_suite_tls.py): it echoes at most 512 bytes of each read, the bug of code
# that takes one write() of a prefix for the whole answer. Never use it for anything else.
import hil_tls
from hil_tls import *  # noqa: F403 - the same apps, only server() differs


def _short_write(sock, data):
    sock.write(data[:512])


def server(port, cert, **kwargs):
    kwargs["write"] = _short_write
    return hil_tls.server(port, cert, **kwargs)
