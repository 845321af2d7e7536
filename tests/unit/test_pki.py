"""harness/pki.py: the test PKI is what the TLS suite says it is. OpenSSL (CPython's ssl) judges
every chain over loopback, and MicroPython's tls (the unix port) must load the DER it gets."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import socket
import ssl
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from harness.pki import HOSTNAME, WRONG_HOSTNAME, TestPKI

MICROPYTHON = shutil.which("micropython", path=str(Path(sys.executable).parent)) or "micropython"


@pytest.fixture(scope="module")
def pki() -> TestPKI:
    return TestPKI()


def handshake(pki: TestPKI, tmp_path: Path, cert: str, *, chain: bool = True, hostname: str = HOSTNAME,
              trust: bytes | None = None) -> str | None:
    """OpenSSL server presenting `cert`, OpenSSL client trusting the root (or `trust`): None if the
    client accepts, else its verify message."""
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(*pki[cert].files(tmp_path, chain=chain))
    client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client_ctx.load_verify_locations(cadata=(trust or pki.trust_pem).decode())
    a, b = socket.socketpair()
    a.settimeout(10)
    b.settimeout(10)

    def serve():
        try:
            with server_ctx.wrap_socket(a, server_side=True):
                pass
        except (ssl.SSLError, OSError):
            pass

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        with client_ctx.wrap_socket(b, server_hostname=hostname):
            return None
    except ssl.SSLCertVerificationError as exc:
        return exc.verify_message
    finally:
        b.close()
        thread.join(10)
        a.close()


def test_good_server_chains_verify_through_the_intermediate(pki, tmp_path):
    assert handshake(pki, tmp_path, "server_rsa") is None
    assert handshake(pki, tmp_path, "server_ec") is None
    # the root alone cannot verify a leaf sent without its intermediate
    assert handshake(pki, tmp_path, "server_rsa", chain=False) == "unable to get local issuer certificate"
    # ... which is why board servers (one DER certificate) are checked against root + intermediate
    assert handshake(pki, tmp_path, "server_rsa", chain=False, trust=pki.trust_with_intermediate_pem) is None


@pytest.mark.parametrize(("cert", "hostname", "message"), [
    ("expired", HOSTNAME, "certificate has expired"),
    ("not_yet_valid", HOSTNAME, "certificate is not yet valid"),
    ("wrong_host", HOSTNAME, f"Hostname mismatch, certificate is not valid for '{HOSTNAME}'."),
    ("server_rsa", WRONG_HOSTNAME, f"Hostname mismatch, certificate is not valid for '{WRONG_HOSTNAME}'."),
    ("rogue_server", HOSTNAME, "unable to get local issuer certificate"),
    ("self_signed", HOSTNAME, "self-signed certificate"),
])
def test_bad_certificates_fail_for_the_stated_reason(pki, tmp_path, cert, hostname, message):
    assert handshake(pki, tmp_path, cert, hostname=hostname) == message


def test_validity_windows_are_relative_to_now(pki):
    now = dt.datetime.now(dt.UTC)
    for cred in pki:
        start, end = cred.cert.not_valid_before_utc, cred.cert.not_valid_after_utc
        if cred.name == "expired":
            assert end <= now - dt.timedelta(hours=23)
        elif cred.name == "not_yet_valid":
            assert start >= now + dt.timedelta(hours=23)
        else:  # a day of margin either side: board clocks minutes off do not matter
            assert start <= now - dt.timedelta(hours=23) and end >= now + dt.timedelta(days=29), cred.name


def test_keys_names_and_usages(pki):
    assert isinstance(pki["server_rsa"].key, rsa.RSAPrivateKey) and pki["server_rsa"].key.key_size == 2048
    assert isinstance(pki["client_rsa"].key, rsa.RSAPrivateKey)
    for name in ("server_ec", "client_ec", "expired", "wrong_host", "self_signed"):
        assert isinstance(pki[name].key.curve, ec.SECP256R1), name
    assert pki["wrong_host"].common_name == WRONG_HOSTNAME
    assert pki["client_ec"].common_name == "hil-client-ec"
    san = pki["server_ec"].cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == [HOSTNAME]
    eku = pki["client_rsa"].cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]
    assert pki["self_signed"].cert.issuer == pki["self_signed"].cert.subject
    assert pki["rogue_server"].cert.issuer == pki.rogue_root.cert.subject
    assert pki["server_rsa"].chain == [pki.intermediate.cert]


def test_two_pkis_share_nothing():
    a, b = TestPKI(), TestPKI()
    assert a.root.cert_der != b.root.cert_der
    assert a["server_ec"].key_der != b["server_ec"].key_der


def test_board_files_are_der(pki):
    files = pki.board_files()
    assert files["root.der"] == pki.root.cert_der
    assert x509.load_der_x509_certificate(files["server_rsa.der"]) == pki["server_rsa"].cert
    chain = files["server_ec.chain.der"]
    assert chain == pki["server_ec"].cert_der + pki.intermediate.cert_der
    key = serialization.load_der_private_key(files["client_ec.key"], None)
    assert key.private_numbers() == pki["client_ec"].key.private_numbers()
    assert {n for n in files if n.endswith(".key")} == {f"{c.name}.key" for c in pki}


def run_micropython(code: str, cwd: Path) -> str:
    proc = subprocess.run([MICROPYTHON, "-c", code], capture_output=True, text=True, timeout=30, cwd=cwd,
                          env=os.environ | {"MICROPYPATH": ".frozen"})
    assert proc.returncode == 0, proc.stderr or proc.stdout
    return proc.stdout


def test_micropython_tls_loads_the_der_and_rejects_pem(pki, tmp_path):
    """MicroPython's tls (mbedTLS) parses every certificate and key as DER; PEM does not parse."""
    for name, data in pki.board_files().items():
        (tmp_path / name).write_bytes(data)
    (tmp_path / "server_rsa.pem").write_bytes(pki["server_rsa"].cert_pem)
    names = [c.name for c in pki]
    out = run_micropython(
        "import tls\n"
        f"for n in {names!r}:\n"
        "    c = tls.SSLContext(tls.PROTOCOL_TLS_SERVER)\n"
        "    c.load_cert_chain(open(n + '.der', 'rb').read(), open(n + '.key', 'rb').read())\n"
        "    c.load_verify_locations(open('root.der', 'rb').read())\n"
        "print('der ok')\n"
        "try:\n"
        "    c.load_verify_locations(open('server_rsa.pem', 'rb').read())\n"
        "except ValueError as e:\n"
        "    print('pem', e)\n",
        tmp_path)
    assert out.splitlines() == ["der ok", "pem invalid cert"]
