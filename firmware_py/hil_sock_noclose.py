# A deliberately broken twin of hil_sock_msg (the sockets suite's board app): its download server
# keeps every accepted connection in its client table and never closes it. The peer never sees
# EOF, and each connection holds a file descriptor (Linux) or a TCP PCB (lwIP: 40 in the mps2
# build) for good. Only for HIL_SOCK_APP=hil_sock_noclose (tests/integration/test_suite_sockets.py).
from hil_sock_msg import FileServer, serve, udp_echo  # noqa: F401 - the rest of the app, unchanged

clients = []  # the app's connection table (module level: it outlives one serving loop)


class NoCloseServer(FileServer):
    def finish(self, c):
        clients.append(c)  # BUG: never closed, never pruned


def file_server(port, count=1, blocking=True, sndbuf=None):
    NoCloseServer(blocking, sndbuf).run(port, count)
