# A deliberately broken twin of hil_sock_msg (the sockets suite's board app): when the stack has no
# socket left, its client pool makes room by closing its oldest held connection and tries again,
# so asking for a socket at the limit silently kills an established session (the peer sees a FIN,
# the app's next send() on it fails). What an embedded stack that reclaimed a live PCB for a new
# one would do too. Only for HIL_SOCK_APP=hil_sock_evict (tests/integration/test_suite_sockets.py).
import hil_sock_msg
from hil_sock_msg import FileServer, file_server, serve, udp_echo  # noqa: F401 - the rest of the app


class EvictingPool(hil_sock_msg.Pool):
    evicted = 0

    def new_socket(self):
        while True:
            try:
                return super().new_socket()
            except OSError:
                if self.evicted == len(self.held):
                    raise
                self.held[self.evicted].close()  # BUG: a live connection makes room for a new socket
                self.evicted += 1


hil_sock_msg.Pool = EvictingPool


def pool_at_limit(host, port, conns):
    hil_sock_msg.pool_at_limit(host, port, conns)
