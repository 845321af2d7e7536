# A deliberately broken variant of hil_sock_msg: it assumes one recv() returns exactly one whole
# message (the "one message = one packet" bug). Same interface, so the sockets suite can be pointed
# at it (HIL_SOCK_PARSER=hil_sock_naive) to prove the suite catches the bug
# (tests/test_suite_sockets.py). Do not use it for anything else.
import hil_sock
from hil_sock_msg import reply


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
