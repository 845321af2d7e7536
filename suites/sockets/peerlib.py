"""Host/board coordination for the BSD socket suite: the host is the other party of every test
(the fixtures using it are in conftest.py).

Like MicroPython's multi-instance tests (tests/run-multitests.py), but as pytest fixtures:

- ``peer`` (a Peer) is the host side: where host sockets bind and how the board reaches the host
  (``peer.host_ip`` is passed to the board, like ``multitest.globals(IP=...)``), ports the board
  may listen on and where the host connects to reach them, host sockets that are closed after the
  test, and ``peer.start(call)`` to run a role from firmware_py/hil_sock*.py on the board.
- a started role (a Role) is the board side: ``role.ready()`` waits for its ``READY;`` (the
  multitests' ``next()``), ``role.signal(word)`` is a barrier (the board prints ``WAIT word;`` and
  blocks reading the word from its console; the host writes it when it has done its part: the
  multitests' ``broadcast``/``wait``), ``role.result()`` the value it reported with ``RESULT``.
  A role still running when the test ends (a failed assertion) is interrupted with Ctrl-C, so the
  next test gets a clean board.

Everything has a timeout; host peers only talk to loopback or to the harness's namespaces."""

from __future__ import annotations

import ast
import contextlib
import selectors
import socket
import struct
import threading
import zlib

ROLE_TIMEOUT = 60.0  # a role's whole run (TCG under load is slow; roles end far sooner)
BLOCK = 4097  # off a power of two on purpose, as in firmware_py/hil_sock.py
_BASE = bytes((i * 811) & 0xFF for i in range(BLOCK))


def pattern(total: int) -> bytes:
    """The bulk pattern firmware_py/hil_sock.py sends: numbered blocks of BLOCK bytes."""
    blocks = [struct.pack(">I", k) + _BASE[4:] for k in range((total + BLOCK - 1) // BLOCK)]
    return b"".join(blocks)[:total]


def crc(data: bytes) -> int:
    return zlib.crc32(data) & 0xFFFFFFFF


def recv_exact(sock: socket.socket, n: int) -> bytes:
    out = bytearray()
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            break
        out += chunk
    return bytes(out)


def recv_all(sock: socket.socket) -> bytes:
    out = bytearray()
    while chunk := sock.recv(65536):
        out += chunk
    return bytes(out)


# lwIP's memp pools and heap as the mps2 firmware reports them (firmware_c/mps2/lan9118.c):
# {name: (used, max, avail, refused)}; boards without it (Linux's stack) raise and get no note
POOLS_CALL = "__import__('network').LAN().status('pools')"


def lwip_pool_note(dut) -> str | None:
    """Which lwIP pools are full or have refused an allocation since boot, in one line, for a test
    that failed with ENOMEM: the cause named, not just the errno. None where the board has no
    lwIP accounting (or cannot be asked)."""
    try:
        pools = dut.eval(POOLS_CALL, timeout=10)
    except Exception:  # no lwIP, or a board that is gone: the failure stands as it is
        return None
    hit = [
        f"{name} ({used} of {avail} in use{', FULL' if used >= avail else ''}, {refused} refused since boot)"
        for name, (used, _max, avail, refused) in sorted(pools.items())
        if refused or used >= avail
    ]
    return "lwIP pools out of room: " + "; ".join(hit) if hit else "lwIP pools: none full, none refused"


class Role:
    """A firmware_py role running on the board (see the module docstring)."""

    def __init__(self, dut, call: str, running) -> None:
        self.dut, self.call, self.running = dut, call, running
        self.value = None

    def wait(self, marker: str, timeout: float = 30.0) -> str:
        return self.running.wait_for(marker, timeout)

    def ready(self, timeout: float = 30.0) -> Role:
        self.wait("READY;", timeout)
        return self

    def signal(self, word: str, action=None, timeout: float = 30.0) -> None:
        """Barrier: wait until the board blocks on ``word``, do ``action()`` (if given), release it."""
        self.wait(f"WAIT {word};", timeout)
        if action is not None:
            action()
        self.dut.console.send(f"{word}\n".encode())

    def result(self, timeout: float = ROLE_TIMEOUT):
        out = self.running.finish(timeout)
        lines = [line for line in out.splitlines() if line.startswith("RESULT ")]
        assert lines, f"role {self.call} ended without RESULT; output: {out!r}"
        self.value = ast.literal_eval(lines[-1][len("RESULT ") :])
        return self.value

    @property
    def done(self) -> bool:
        return self.running.done

    def stop(self) -> None:
        """Interrupt the role if it is still running (the test failed before it ended)."""
        if self.running.done:
            return
        self.dut.console_note(f"sockets suite: interrupting unfinished role {self.call}")
        self.dut.repl.interrupt()
        with contextlib.suppress(Exception):
            self.running.finish(10)


class HostEcho:
    """A host TCP echo server on the board's link (thread + selectors), for board-as-client tests."""

    def __init__(self, peer: Peer, backlog: int = 64) -> None:
        self.listener = peer.listen(backlog=backlog)
        self.port = self.listener.getsockname()[1]
        self.listener.setblocking(False)
        self.accepted = 0
        self.peers: list[tuple[str, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="hil-host-echo")
        self._thread.start()

    def _run(self) -> None:
        sel = selectors.DefaultSelector()
        sel.register(self.listener, selectors.EVENT_READ)
        try:
            while not self._stop.is_set():
                for key, _ in sel.select(0.05):
                    sock = key.fileobj
                    if sock is self.listener:
                        with contextlib.suppress(BlockingIOError):
                            conn, addr = self.listener.accept()
                            self.peers.append(addr)
                            conn.setblocking(False)
                            sel.register(conn, selectors.EVENT_READ)
                            self.accepted += 1
                        continue
                    try:
                        data = sock.recv(65536)
                    except (BlockingIOError, InterruptedError):
                        continue
                    except OSError:
                        data = b""
                    if not data:
                        sel.unregister(sock)
                        sock.close()
                        continue
                    sock.setblocking(True)
                    sock.settimeout(10)
                    try:
                        sock.sendall(data)
                    except OSError:
                        pass
                    sock.setblocking(False)
        finally:
            for key in list(sel.get_map().values()):
                key.fileobj.close()
            sel.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)


class Peer:
    """The host side of a two-party socket test on one board."""

    def __init__(self, dut, app: str) -> None:
        self.dut = dut
        self.net = dut.net
        self.app = app  # the module playing the board app (conftest.py board_app)
        self.roles: list[Role] = []
        self._closers: list = []

    # --- addresses ------------------------------------------------------------------------------
    @property
    def mode(self) -> str:
        return self.net.mode

    @property
    def host_ip(self) -> str:
        """The host, as the board reaches it."""
        return self.net.host_ip

    @property
    def bind_ip(self) -> str:
        """Where host sockets bind so the board can reach them."""
        return "127.0.0.1" if self.net.mode in ("host", "user") else self.net.host_ip

    @property
    def host_seen_from_board(self) -> str:
        """The source address the board sees on the host's packets (QEMU user mode: 10.0.2.2)."""
        return self.net.host_ip

    @property
    def board_seen_from_host(self) -> str:
        """The source address the host sees on the board's connections (user mode: QEMU's own
        sockets on 127.0.0.1)."""
        return "127.0.0.1" if self.net.mode == "user" else self.net.guest_ip

    def port(self, index: int = 0) -> int:
        return self.net.tcp_port(index)

    def udp_port(self, index: int = 0) -> int:
        return self.net.udp_port(index)

    def address(self, guest_port: int, proto: str = "tcp") -> tuple[str, int]:
        return self.net.address(guest_port, proto)

    # --- host sockets (closed after the test) -----------------------------------------------------
    def keep(self, sock: socket.socket) -> socket.socket:
        self._closers.append(sock.close)
        return sock

    def connect(self, guest_port: int, *, nodelay: bool = False, timeout: float = 15.0,
                rcvbuf: int | None = None) -> socket.socket:  # fmt: skip
        """A host connection to a board port. rcvbuf: a small receive buffer, set before the
        handshake so the window it advertises is small too (the board's sends fill it quickly)."""
        if rcvbuf is None:
            sock = self.keep(self.net.connect(guest_port, timeout=timeout))
        else:
            sock = self.tcp()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            sock.settimeout(timeout)
            sock.connect(self.address(guest_port))
        sock.settimeout(timeout)
        if nodelay:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def listen(self, type_: int = socket.SOCK_STREAM, backlog: int = 16, timeout: float = 15.0,
               rcvbuf: int | None = None) -> socket.socket:  # fmt: skip
        """A host server the board reaches at (host_ip, its port). rcvbuf: a small receive buffer
        (inherited by accepted connections), so the board's sends fill the window quickly."""
        if rcvbuf is None:
            sock = self.keep(self.net.listen(type_, backlog))
        else:

            def make() -> socket.socket:
                s = socket.socket()
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
                s.bind((self.bind_ip, 0))
                s.listen(backlog)
                return s

            sock = self.keep(self.run(make))
        sock.settimeout(timeout)
        return sock

    def udp(self, timeout: float = 10.0) -> socket.socket:
        sock = self.keep(self.net.new_socket(socket.SOCK_DGRAM))
        sock.bind((self.bind_ip, 0))
        sock.settimeout(timeout)
        return sock

    def tcp(self) -> socket.socket:
        return self.keep(self.net.new_socket(socket.SOCK_STREAM))

    def closed_port(self) -> int:
        """A host port with nothing listening (bound then closed; nobody rebinds it meanwhile)."""
        sock = self.net.listen()
        port = sock.getsockname()[1]
        sock.close()
        return port

    def echo_server(self, backlog: int = 64) -> HostEcho:
        echo = HostEcho(self, backlog)
        self._closers.insert(0, echo.close)
        return echo

    def run(self, fn):
        """fn on the host side of the link (inside the tap namespace)."""
        return self.net.run(fn)

    # --- the board side -------------------------------------------------------------------------
    def start(self, call: str, module: str = "hil_sock", ready: bool = False) -> Role:
        """Run ``module.call`` on the board (e.g. ``sink(7000)``); returns at once."""
        code = f"import {module}\n{module}.{call}\n"
        role = Role(self.dut, f"{module}.{call}", self.dut.spawn(code))
        self.roles.append(role)
        if ready:
            role.ready()
        return role

    def start_code(self, code: str) -> Role:
        """Run board code that ends with hil_sock.result(...) (for cases too small for a role)."""
        role = Role(self.dut, code.splitlines()[-1][:60], self.dut.spawn(code + "\n"))
        self.roles.append(role)
        return role

    def eval(self, call: str, module: str = "hil_sock", timeout: float = ROLE_TIMEOUT):
        """A role that computes and returns (no host action needed while it runs)."""
        return self.dut.eval(f"__import__({module!r}).{call}", timeout=timeout)

    def close(self) -> None:
        for role in self.roles:
            role.stop()
        for closer in self._closers:
            with contextlib.suppress(Exception):
                closer()
