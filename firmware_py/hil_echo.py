# TCP/UDP echo apps for the board (MicroPython and CPython). The board prints READY once it
# listens, so the host (the other party) knows when to connect: see harness.repl.RunningCode.
import socket


def _addr(host, port):
    return socket.getaddrinfo(host, port)[0][-1]


def tcp_server(port, conns=1, bufsize=512):
    """Echo every byte back until the peer closes; serve `conns` connections in turn."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(_addr("0.0.0.0", port))
    s.listen(2)
    print("READY", port)
    total = 0
    try:
        for _ in range(conns):
            c, _peer = s.accept()
            while True:
                data = c.recv(bufsize)
                if not data:
                    break
                view = memoryview(data)
                while view:  # send may be partial: loop until every byte is out
                    n = c.send(view)
                    view = view[n:]
                total += len(data)
            c.close()
    finally:
        s.close()
    print("ECHOED", total)
    return total


def udp_server(port, count=1, bufsize=1500):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(_addr("0.0.0.0", port))
    print("READY", port)
    try:
        for _ in range(count):
            data, peer = s.recvfrom(bufsize)
            s.sendto(data, peer)
    finally:
        s.close()
    print("ECHOED", count)
