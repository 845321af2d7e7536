"""The TLS suite catches a broken client: run its certificate cases (suites/tls/test_tls_client.py)
against the board app hil_tls (they pass) and against hil_tls_noverify, the same app with
verification switched off (every one of them fails, each because the board accepted the server),
on native (the unix port, Linux sockets) and mps2_an385 (bare metal: lwIP + mbedTLS).
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








