"""A fork server for a process board whose program is a Python entry point (``[launch] entry``,
e.g. ``micropython_unix:main``, what the venv's ``micropython`` command runs).

Run as ``python forkserver.py MODULE:FUNC FD``: it imports the module once, then, for each request
on the unix SOCK_SEQPACKET socket FD (a packet: JSON ``{"argv", "cwd", "env"}`` plus a pty slave
passed as SCM_RIGHTS), forks a child that makes the pty its controlling terminal and stdio and
calls FUNC with that argv: a new interpreter state in about a millisecond, where starting the
command costs a CPython start and an import (30-150 ms). Nothing runs in the server before the fork but the import, so
each child starts from the state a fresh process has after it. Replies: ``{"pid": N}`` per
request, ``{"exit": N, "status": S}`` when a child ends (S: its exit code, or -signal).

Standard library only, and no import of the harness: it runs beside it, not inside it."""

from __future__ import annotations

import ctypes
import fcntl
import importlib
import json
import os
import selectors
import signal
import socket
import sys
import termios
import traceback

PR_SET_PDEATHSIG = 1


def _die_with(sig: int) -> None:
    """Die when the parent does (the harness for the server, the server for a child)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, sig)
    except (OSError, AttributeError):
        pass


def _child(entry, request: dict, slave: int, sock: socket.socket, wakeup: int) -> None:
    """In the forked child: become the board's process on ``slave``; never returns."""
    status = 1
    try:
        signal.set_wakeup_fd(-1)
        os.close(wakeup)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        _die_with(signal.SIGKILL)
        sock.close()
        os.setsid()
        fcntl.ioctl(slave, termios.TIOCSCTTY, 0)  # Ctrl-C on the pty: SIGINT to this process
        for fd in (0, 1, 2):
            os.dup2(slave, fd)
        if slave > 2:
            os.close(slave)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        sys.argv = list(request["argv"])
        result = entry()
        status = result if isinstance(result, int) else 0
    except SystemExit as exc:
        status = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        traceback.print_exc()
    os._exit(status)


def serve(entry_point: str, fd: int) -> None:
    module, _, func = entry_point.partition(":")
    entry = getattr(importlib.import_module(module), func)
    sock = socket.socket(fileno=fd)
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    signal.set_wakeup_fd(write_end)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    events = selectors.DefaultSelector()
    events.register(sock, selectors.EVENT_READ)
    events.register(read_end, selectors.EVENT_READ)
    sock.send(b'{"ready": true}')
    while True:
        for key, _ in events.select():
            if key.fileobj is read_end:
                os.read(read_end, 512)
                _reap(sock)
                continue
            message, fds, _, _ = socket.recv_fds(sock, 65536, 1)
            if not message:
                return  # the harness is gone
            request = json.loads(message)
            pid = os.fork()
            if pid == 0:
                _child(entry, request, fds[0], sock, read_end)
            for extra in fds:
                os.close(extra)
            sock.send(json.dumps({"pid": pid}).encode())


def _reap(sock: socket.socket) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        code = os.waitstatus_to_exitcode(status)
        sock.send(json.dumps({"exit": pid, "status": code}).encode())


if __name__ == "__main__":
    _die_with(signal.SIGTERM)
    serve(sys.argv[1], int(sys.argv[2]))
