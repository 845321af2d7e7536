"""The TLS suite catches broken board apps, on native (the unix port, Linux sockets) and mps2_an385
(bare metal: lwIP + mbedTLS):
- a client: the certificate cases (suites/tls/test_tls_client.py) pass hil_tls and fail
  hil_tls_noverify, the same app with verification switched off (each because the board accepted
  the server);
- servers: the hostile-peer cases (suites/tls/test_tls_hostile.py) that pass hil_tls fail its broken
  twins, each case for its own reason: hil_tls_fragile (the first failed handshake ends the
  service), hil_tls_leaky (a failed connection is never closed) and hil_tls_shortwrite (an echo that
  writes at most 512 bytes of each read); and the mutual-TLS cases (suites/tls/test_tls_server.py)
  fail hil_tls_srv_noverify (client verification switched off).
Also: firmware_py/hil_tls.py works under CPython, as its header promises."""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

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


# --- the server twins against the hostile-peer cases ---------------------------------------------------
HOSTILE_CASES = REPO / "suites" / "tls" / "test_tls_hostile.py"
# cases that end in a fatal alert from the board, then a close (and a good client served after it)
ALERT_CASES = (
    "test_truncated_client_hello_gets_decode_error[{}]",
    "test_odd_cipher_suites_length_gets_decode_error[{}]",
    "test_duplicated_client_key_exchange_gets_unexpected_message[{}]",
    "test_renegotiation_info_not_empty_gets_handshake_failure[{}]",
    "test_capability_sha1_ecdsa_signatures_refused[{}]",
)
# cases that complete an odd handshake and echo 2,000 bytes
ECHO_CASES = (
    "test_large_client_hello_completes[{}-12000-in-4k-records]",
    "test_large_client_hello_completes[{}-16600]",
)
HOSTILE_SELECT = ("truncated_client_hello or odd_cipher_suites or duplicated_client_key_exchange or "
                  "renegotiation_info or sha1_ecdsa or large_client_hello_completes")
# per twin: which cases fail, and what their failure says
TWINS = {
    "hil_tls_fragile": (ALERT_CASES, "the board stopped serving after the hostile peer"),
    "hil_tls_leaky": (ALERT_CASES, "after its alert the board left the connection open"),
    "hil_tls_shortwrite": (ECHO_CASES, "echo of 2000 bytes after the handshake"),
}


def run_hostile_cases(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, module: str, target: str):
    monkeypatch.setenv("HIL_TLS_SERVER", module)
    result = pytester.runpytest_subprocess(
        str(HOSTILE_CASES), "--board", target, "-p", "no:cacheprovider", "-k", HOSTILE_SELECT, "-rA",
        "--hil-logs", str(pytester.path / "logs"), timeout=900)
    text = result.stdout.str()
    return {name: outcome for outcome, name in OUTCOME.findall(text)}, text


@pytest.mark.parametrize("target", BOARDS)
def test_hostile_cases_pass_the_real_server(pytester, monkeypatch, target):
    outcomes, text = run_hostile_cases(pytester, monkeypatch, "hil_tls", target)
    assert outcomes == dict.fromkeys(cases(ALERT_CASES + ECHO_CASES, target), "PASSED"), text[-3000:]


@pytest.mark.parametrize("twin", list(TWINS))
@pytest.mark.parametrize("target", BOARDS)
def test_hostile_cases_fail_a_broken_server(pytester, monkeypatch, target, twin):
    failing, why = TWINS[twin]
    outcomes, text = run_hostile_cases(pytester, monkeypatch, twin, target)
    every = cases(ALERT_CASES + ECHO_CASES, target)
    expected = dict.fromkeys(every, "PASSED") | dict.fromkeys(cases(failing, target), "FAILED")
    assert outcomes == expected, text[-3000:]
    for name in cases(failing, target):  # each failed for the twin's bug, as a test failure
        section = text[text.index(f"_ {name} _"):]
        assert why in section[:20000], (name, section[:3000])


SERVER_CASES = REPO / "suites" / "tls" / "test_tls_server.py"
MTLS_REQUIRED = (
    "test_mtls_required_accepts_trusted_client[{}-client_rsa]",
    "test_mtls_required_accepts_trusted_client[{}-client_ec]",
    "test_mtls_required_rejects_client_without_certificate[{}]",
    "test_mtls_required_rejects_untrusted_client[{}]",
)


@pytest.mark.parametrize(("module", "outcome"), [("hil_tls", "PASSED"), ("hil_tls_srv_noverify", "FAILED")])
@pytest.mark.parametrize("target", BOARDS)
def test_mtls_cases_catch_a_server_with_verification_off(pytester, monkeypatch, target, module, outcome):
    monkeypatch.setenv("HIL_TLS_SERVER", module)
    result = pytester.runpytest_subprocess(
        str(SERVER_CASES), "--board", target, "-p", "no:cacheprovider", "-k", "mtls_required", "-rA",
        "--hil-logs", str(pytester.path / "logs"), timeout=600)
    text = result.stdout.str()
    outcomes = {name: out for out, name in OUTCOME.findall(text)}
    assert outcomes == dict.fromkeys(cases(MTLS_REQUIRED, target), outcome), text[-3000:]
