"""The TLS suite catches a broken client: run its certificate cases (suites/tls/test_tls_client.py)
against the board app hil_tls (they pass) and against hil_tls_noverify, the same app with
verification switched off (every one of them fails, each because the board accepted the server),
on native (the unix port, Linux sockets) and mps2_an385 (bare metal: lwIP + mbedTLS).
Also: firmware_py/hil_tls.py works under CPython, as its header promises."""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.net.boardnet import free_port
from harness.pki import TestPKI

REPO = Path(__file__).resolve().parent.parent
MICROPYTHON = shutil.which("micropython", path=str(Path(sys.executable).parent))
CLIENT_CASES = REPO / "suites" / "tls" / "test_tls_client.py"
# the certificate cases: bad chains, names, dates, a missing server_hostname; plus the good chain
# and the explicit CERT_NONE control, which pass with either client
SELECT = "(rejects and not corrupted) or cert_required_without_hostname or accepts_good_chain or verify_none"
# the unix port on Linux (native) and the bare-metal lwIP + mbedTLS build (mps2_an385): the client
# cases must catch the mutant on both network stacks
BOARDS = ["native", "mps2_an385"]
BAD_CASES = (
    "test_client_rejects_untrusted_chain[{}-untrusted_issuer]",
    "test_client_rejects_untrusted_chain[{}-self_signed]",
    "test_client_rejects_untrusted_chain[{}-missing_intermediate]",
    "test_client_rejects_wrong_hostname[{}-certificate_names_other_host]",
    "test_client_rejects_wrong_hostname[{}-board_expects_other_host]",
    "test_client_rejects_expired_certificate[{}]",
    "test_client_rejects_not_yet_valid_certificate[{}]",
    "test_client_cert_required_without_hostname_fails_before_handshake[{}]",
)
GOOD_CASES = (
    "test_client_accepts_good_chain[{}-rsa]",
    "test_client_accepts_good_chain[{}-ec]",
    "test_client_verify_none_accepts_self_signed[{}]",
)
OUTCOME = re.compile(r"^(PASSED|FAILED|ERROR|XFAIL|XPASS|SKIPPED) \S+::(\S+)", re.M)


def cases(templates: tuple[str, ...], target: str) -> set[str]:
    return {t.format(target) for t in templates}


def run_client_cases(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, module: str, target: str):
    monkeypatch.setenv("HIL_TLS_CLIENT", module)
    result = pytester.runpytest_subprocess(
        str(CLIENT_CASES), "--board", target, "-p", "no:cacheprovider", "-k", SELECT, "-rA",
        "--hil-logs", str(pytester.path / "logs"), timeout=600)
    text = result.stdout.str()
    outcomes = {name: outcome for outcome, name in OUTCOME.findall(text)}
    return outcomes, text


@pytest.mark.parametrize("target", BOARDS)
def test_suite_passes_the_verifying_client(pytester, monkeypatch, target):
    outcomes, text = run_client_cases(pytester, monkeypatch, "hil_tls", target)
    assert outcomes == dict.fromkeys(cases(BAD_CASES, target) | cases(GOOD_CASES, target), "PASSED"), text[-3000:]


@pytest.mark.parametrize("target", BOARDS)
def test_suite_fails_a_client_with_verification_off(pytester, monkeypatch, target):
    outcomes, text = run_client_cases(pytester, monkeypatch, "hil_tls_noverify", target)
    bad, good = cases(BAD_CASES, target), cases(GOOD_CASES, target)
    # the good-chain cases fail too: with CERT_NONE no chain is verified, so the board's verify
    # callback never sees root -> intermediate -> leaf; only the explicit CERT_NONE control passes
    control = f"test_client_verify_none_accepts_self_signed[{target}]"
    expected = dict.fromkeys(bad | good, "FAILED") | {control: "PASSED"}
    assert outcomes == expected, text[-3000:]
    # each bad case failed because the board completed the handshake with the bad server
    no_hostname = f"test_client_cert_required_without_hostname_fails_before_handshake[{target}]"
    for name in bad - {no_hostname}:
        section = text[text.index(f"_ {name} _"):]
        assert "board accepted the server" in section[:20000], name
    section = text[text.index(f"_ {no_hostname} _"):]
    assert "!= ('ValueError', None, 'CERT_REQUIRED requires server_hostname')" in section[:20000]


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
