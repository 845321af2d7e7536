"""The TLS suite catches a broken client: run its certificate cases (suites/tls/test_tls_client.py)
against the board app hil_tls (they pass) and against hil_tls_noverify, the same app with
verification switched off (every one of them fails, each because the board accepted the server),
on native (the unix port, Linux sockets) and mps2_an385 (bare metal: lwIP + mbedTLS).
Also: firmware_py/hil_tls.py works under CPython, as its header promises."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.net.boardnet import free_port
from harness.pki import TestPKI
from tests.conftest import REPO

MICROPYTHON = shutil.which("micropython", path=str(Path(sys.executable).parent))


def test_hil_tls_runs_under_cpython(tmp_path):
    """The board apps on CPython's ssl: hil_tls.client verifies hil_tls.server against the root and
    intermediate, and rejects it when it trusts only the rogue root."""
    pki = TestPKI()
    (tmp_path / "hil_pki").mkdir()
    for name, data in pki.board_files().items():
        (tmp_path / "hil_pki" / name).write_bytes(data)
    env = os.environ | {"PYTHONPATH": str(REPO / "firmware_py")}
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-c", f"import hil_tls\nhil_tls.server({port}, 'server_ec', conns=2, timeout=20)"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout.readline() == f"READY {port}\n"
        client = subprocess.run(
            [sys.executable, "-c", f"import hil_tls\n"
             f"hil_tls.client('127.0.0.1', {port}, ca=('root', 'intermediate'), send=b'cpython', expect=7)\n"
             f"hil_tls.client('127.0.0.1', {port}, ca=('rogue_root',), send=b'never', expect=5)"],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
        assert server.wait(timeout=30) == 0
    finally:
        server.kill()
        server.wait()
        server.stdout.close()
    assert client.returncode == 0, client.stderr
    proc = client
    results = [ast.literal_eval(line.split(" ", 1)[1]) for line in proc.stdout.splitlines()
               if line.startswith("RESULT ")]
    good, bad = results
    assert (good["end"], good["data"], good["cipher"][1]) == ("count", b"cpython", "TLSv1.3")
    assert (bad["stage"], bad["error"][0]) == ("handshake", "SSLCertVerificationError")
    assert "certificate verify failed" in bad["error"][2]


def run_micropython(code: str, cwd: Path) -> list:
    """Run code under real MicroPython (the unix port) with firmware_py importable; the printed
    lines as Python literals."""
    env = os.environ | {"MICROPYPATH": f"{REPO / 'firmware_py'}:.frozen"}
    proc = subprocess.run([MICROPYTHON, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr or proc.stdout
    return [ast.literal_eval(line) for line in proc.stdout.splitlines()]


@pytest.mark.skipif(MICROPYTHON is None, reason="micropython (unix port) not installed")
def test_hil_tls_keeps_the_pki_in_ram_without_a_writable_file_system(tmp_path):
    """mps2_an385 has no writable file system (open(..., "wb") raises OSError): store() keeps the
    files in RAM there, and read()/has() find them; where the file system works they go to files."""
    (tmp_path / "ro").mkdir()
    (tmp_path / "ro" / "hil_pki").write_text("a file where the directory should be")
    code = (
        "import hil_tls, binascii\n"
        "b64 = binascii.b2a_base64(b'DER bytes')\n"
        "print(repr(hil_tls.store('root.der', b64)))\n"
        "print(repr(hil_tls.read('root.der')))\n"
        "print(repr(hil_tls.has('root.der', b'DER bytes')))\n"
        "print(repr(hil_tls.has('id', b'marker')))\n"
        "print(repr(sorted(hil_tls._ram)))\n"
    )
    assert run_micropython(code, tmp_path / "ro") == [9, b"DER bytes", True, False, ["root.der"]]
    (tmp_path / "rw").mkdir()
    assert run_micropython(code, tmp_path / "rw") == [9, b"DER bytes", True, False, []]
    assert (tmp_path / "rw" / "hil_pki" / "root.der").read_bytes() == b"DER bytes"


@pytest.mark.skipif(MICROPYTHON is None, reason="micropython (unix port) not installed")
def test_hil_tls_error_names_errnos_under_micropython(tmp_path):
    """Socket errors by name from the board's errno module, whatever their sign (MicroPython 1.25
    raises -errno from an established TLS connection); mbedTLS errors keep their code and text."""
    code = (
        "import hil_tls\n"
        "for e in (OSError(104), OSError(-104), OSError(-110), OSError(32), OSError(-29056),\n"
        "          OSError(-29056, 'MBEDTLS_ERR_SSL_INVALID_MAC'), ValueError('\\nreason\\n')):\n"
        "    print(repr(hil_tls.error(e)))\n"
    )
    assert run_micropython(code, tmp_path) == [
        ("OSError", "ECONNRESET", ""),
        ("OSError", "ECONNRESET", ""),
        ("OSError", "ETIMEDOUT", ""),  # 110 on Linux (the unix port here), 116 on mps2_an385
        ("OSError", 32, ""),  # MicroPython's errno module has no EPIPE
        ("OSError", -29056, ""),
        ("OSError", -29056, "MBEDTLS_ERR_SSL_INVALID_MAC"),
        ("ValueError", None, "\nreason\n"),
    ]


