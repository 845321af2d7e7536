# A deliberately broken twin of hil_sock_msg (the sockets suite's board app): its message server
# assumes one recv() returns exactly one whole message (the "one message = one packet" bug). Only
# for HIL_SOCK_APP=hil_sock_naive (tests/integration/test_suite_sockets.py).
import hil_sock
from hil_sock_msg import file_server, reply, udp_echo  # noqa: F401 - the rest of the app, unchanged


def serve(port, framing="len", trace=False, bufsize=512):
    c, _ = hil_sock.accept_one(port)
    count = total = 0
    while True:
        data = c.recv(bufsize)
        if not data:
            break
        total += len(data)
        if trace:
            print(f"RX {total};")
        if framing == "len":
            n = (data[0] << 8) | data[1]  # the header is assumed to be all here...
            msg = data[2 : 2 + n]  # ...and so is the body; anything after it is ignored
        else:
            msg = data[:-1] if data.endswith(b"\n") else data
        hil_sock.send_all(c, reply(count, msg))
        count += 1
    c.close()
    hil_sock.result((count, total, 0))
