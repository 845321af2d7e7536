# A deliberately broken TLS echo server, kept to prove the TLS suite catches it
# (tests/integration/test_suite_tls.py): mutual TLS asked for, but client verification switched off
# (verify forced to CERT_NONE, the server-side "make the error go away" fix): no certificate is
# requested and any client is served. Never use it for anything else.
import hil_tls
from hil_tls import *  # noqa: F403 - the same apps, only server() differs


def server(port, cert, **kwargs):
    kwargs["verify"] = hil_tls.CERT_NONE
    return hil_tls.server(port, cert, **kwargs)
