"""The TLS suite catches a broken client: run its certificate cases (suites/tls/test_tls_client.py)
against the board app hil_tls (they pass) and against hil_tls_noverify, the same app with
verification switched off (every one of them fails, each because the board accepted the server).
Also: firmware_py/hil_tls.py works under CPython, as its header promises."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from harness.boardnet import free_port
from harness.pki import TestPKI

REPO = Path(__file__).resolve().parent.parent
CLIENT_CASES = REPO / "suites" / "tls" / "test_tls_client.py"
# the certificate cases: bad chains, names, dates, a missing server_hostname; plus the good chain
# and the explicit CERT_NONE control, which pass with either client
SELECT = "(rejects and not corrupted) or cert_required_without_hostname or accepts_good_chain or verify_none"
BAD = {
    "test_client_rejects_untrusted_chain[native-untrusted_issuer]",
    "test_client_rejects_untrusted_chain[native-self_signed]",
    "test_client_rejects_untrusted_chain[native-missing_intermediate]",
    "test_client_rejects_wrong_hostname[native-certificate_names_other_host]",
    "test_client_rejects_wrong_hostname[native-board_expects_other_host]",
    "test_client_rejects_expired_certificate[native]",
    "test_client_rejects_not_yet_valid_certificate[native]",
    "test_client_cert_required_without_hostname_fails_before_handshake[native]",
}
GOOD = {
    "test_client_accepts_good_chain[native-rsa]",
    "test_client_accepts_good_chain[native-ec]",
    "test_client_verify_none_accepts_self_signed[native]",
}
OUTCOME = re.compile(r"^(PASSED|FAILED|ERROR|XFAIL|XPASS|SKIPPED) \S+::(\S+)", re.M)


def run_client_cases(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, module: str):
    monkeypatch.setenv("HIL_TLS_CLIENT", module)
    result = pytester.runpytest_subprocess(
        str(CLIENT_CASES), "--board", "native", "-p", "no:cacheprovider", "-k", SELECT, "-rA",
        "--hil-logs", str(pytester.path / "logs"), timeout=300)
    text = result.stdout.str()
    outcomes = {name: outcome for outcome, name in OUTCOME.findall(text)}
    return outcomes, text


def test_suite_passes_the_verifying_client(pytester, monkeypatch):
    outcomes, text = run_client_cases(pytester, monkeypatch, "hil_tls")
    assert outcomes == dict.fromkeys(BAD | GOOD, "PASSED"), text[-3000:]


def test_suite_fails_a_client_with_verification_off(pytester, monkeypatch):
    outcomes, text = run_client_cases(pytester, monkeypatch, "hil_tls_noverify")
    # the good-chain cases fail too: with CERT_NONE no chain is verified, so the board's verify
    # callback never sees root -> intermediate -> leaf; only the explicit CERT_NONE control passes
    expected = dict.fromkeys(BAD | GOOD, "FAILED") | {"test_client_verify_none_accepts_self_signed[native]": "PASSED"}
    assert outcomes == expected, text[-3000:]
    # each bad case failed because the board completed the handshake with the bad server
    no_hostname = "test_client_cert_required_without_hostname_fails_before_handshake[native]"
    for name in BAD - {no_hostname}:
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
