"""Turn a serial port into a SocketCAN interface with the kernel's slcan line discipline.

Run by the guest's /init with Debian's python3.11 (-S, no stdlib beyond builtins): prints the
new interface's name and exits once the interface exists; a forked child keeps the tty open,
since closing it would detach the line discipline and remove the interface."""

import fcntl
import os
import sys
import time

TIOCSETD = 0x5423
N_SLCAN = 17
SIOCGIFNAME = 0x8910  # slcan answers it on the tty with its netdev's name


def main() -> None:
    fd = os.open(sys.argv[1], os.O_RDWR | os.O_NOCTTY)
    fcntl.ioctl(fd, TIOCSETD, N_SLCAN.to_bytes(4, sys.byteorder))  # int *; struct.py is not shipped
    name = fcntl.ioctl(fd, SIOCGIFNAME, bytes(16)).split(b"\0")[0].decode()
    sys.stdout.write(name + "\n")
    sys.stdout.flush()
    if os.fork():
        os._exit(0)
    os.setsid()
    null = os.open("/dev/null", os.O_RDWR)
    for std in (0, 1, 2):  # let init's $(...) see end of output
        os.dup2(null, std)
    while True:
        time.sleep(86400)


main()
