# A deliberately broken twin of hil_sock_msg (the sockets suite's board app): its download server
# assumes send() takes the whole buffer. It retries on EAGAIN, as an event loop does, but a short
# count is taken for "all sent", so the rest of the reply is silently lost. lwIP returns short
# counts from blocking sends too (once the buffer exceeds the free send space); Linux only when
# non-blocking. Only for HIL_SOCK_APP=hil_sock_shortsend (tests/integration/test_suite_sockets.py).
import errno
import select

from hil_sock_msg import FileServer, serve, udp_echo  # noqa: F401 - the rest of the app, unchanged


class ShortSendServer(FileServer):
    def send(self, c, data):
        while True:
            try:
                c.send(data)  # BUG: the count send() returns is ignored
                return
            except OSError as e:
                if e.errno != errno.EAGAIN:
                    raise
                p = select.poll()
                p.register(c, select.POLLOUT)
                p.poll(10000)


def file_server(port, count=1, blocking=True, sndbuf=None):
    ShortSendServer(blocking, sndbuf).run(port, count)
