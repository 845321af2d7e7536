# A deliberately broken TLS client, kept to prove the TLS suite catches it (tests/test_suite_tls.py):
# hil_tls with certificate verification switched off, the classic "make the error go away" fix.
# Never use it for anything else.
import hil_tls
from hil_tls import *  # noqa: F403 - the same apps, only client() differs


def client(host, port, **kwargs):
    kwargs["verify"] = hil_tls.CERT_NONE
    return hil_tls.client(host, port, **kwargs)
