# Broken twin of hil_multi.echo_server: it echoes every chunk without its last byte (an off-by-one
# in the copy). tests/integration/test_suite_multi.py proves suites/multi catches it.
import hil_multi


def echo_server(port, conns=1, bufsize=1024):
    hil_multi.echo_server(port, conns, bufsize, transform=lambda data: data[:-1])
