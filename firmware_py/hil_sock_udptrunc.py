# A deliberately broken twin of hil_sock_msg (the sockets suite's board app): its UDP echo reads
# into a 512-byte buffer ("our datagrams are small"), so the tail of a longer datagram is silently
# discarded and a truncated copy is echoed. Only for HIL_SOCK_APP=hil_sock_udptrunc
# (tests/integration/test_suite_sockets.py).
import hil_sock
from hil_sock_msg import file_server, serve  # noqa: F401 - the rest of the app, unchanged


def udp_echo(port, count):
    s = hil_sock.udp(port)
    s.settimeout(10)
    hil_sock.ready()
    got = []
    for _ in range(count):
        try:
            d, a = s.recvfrom(512)  # BUG: a longer datagram loses its tail
        except OSError as e:
            got.append(("err", e.errno))
            break
        s.sendto(d, a)
        got.append(len(d))
        print("GOT;")
    s.close()
    hil_sock.result(got)
