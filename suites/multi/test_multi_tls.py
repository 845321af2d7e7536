"""TLS between two boards (firmware_py/hil_tls.py on both): the server board presents a test-PKI
certificate, the client board verifies it (CERT_REQUIRED, the PKI's root and intermediate as
trust anchors, the server's name), and refuses a wrong host name and a rogue CA's chain; mutual
TLS with a client certificate, and a server that refuses a rogue client."""

from __future__ import annotations

import hashlib

import pytest

from harness.pki import HOSTNAME

pytestmark = [pytest.mark.roles("server", "client"), pytest.mark.requires("tls")]

CA = ("root", "intermediate")  # a board server sends its leaf alone (DER holds one certificate)
NOT_TRUSTED = "The certificate is not correctly signed by the trusted CA"
CN_MISMATCH = "The certificate Common Name (CN) does not match with the expected CN"
TIMEOUT = 180.0  # two TCG boards doing RSA on a loaded host


def conns(output: str) -> list[dict]:
    import ast

    return [ast.literal_eval(line[5:]) for line in output.splitlines() if line.startswith("CONN ")]


def tls_pair(duts, server_cert, server_kw=None, **client_kw):
    srv = duts.server.start("hil_tls.server", duts.server.port(), server_cert, **(server_kw or {})).ready(TIMEOUT)
    cli = duts.client.start("hil_tls.client", duts.server.ip, duts.server.port(), **client_kw)
    res = cli.result(TIMEOUT)
    out = srv.output(TIMEOUT)
    assert "DONE" in out, out
    return conns(out)[0], res


def reasons(error) -> set[str]:
    assert error[0] == "ValueError", error
    return {line.strip() for line in error[2].splitlines() if line.strip()}


def test_tls_echo_verified(tls_duts):
    server, client = tls_pair(tls_duts, "server_ec", ca=CA, send=b"board to board", expect=14)
    assert "error" not in client, client
    assert (client["end"], client["data"]) == ("count", b"board to board")
    assert client["cipher"][1] == "TLSv1.2" and server["cipher"] == client["cipher"]
    assert (server["end"], server["n"]) == ("eof", 14)


def test_tls_rsa_server_certificate(tls_duts):
    server, client = tls_pair(tls_duts, "server_rsa", ca=CA, send=b"rsa", expect=3)
    assert "error" not in client and "error" not in server, (server, client)
    assert client["data"] == b"rsa"


def test_tls_bulk_both_ways_sha256(tls_duts):
    n = 32 * 1024
    server, client = tls_pair(tls_duts, "server_ec", ca=CA, send_pattern=n, expect=n)
    want = hashlib.sha256(pattern_tls(n)).hexdigest()
    assert (client.get("error"), client["n"], client["sha"]) == (None, n, want)
    assert (server["n"], server["sha"]) == (n, want)


def pattern_tls(n: int) -> bytes:
    block = bytes((i * 811 + 7) & 0xFF for i in range(256))
    return block * (n // 256) + block[: n % 256]


def test_tls_wrong_host_refused(tls_duts):
    """The certificate is fine, the name is not the one the client asked for."""
    server, client = tls_pair(tls_duts, "server_ec", ca=CA, hostname="not-" + HOSTNAME, send=b"x", expect=1)
    assert client.get("stage") == "handshake", f"client accepted a certificate for another host: {client}"
    assert reasons(client["error"]) == {CN_MISMATCH}
    assert server.get("stage") == "handshake" and "n" not in server, server


def test_tls_wrong_host_certificate_refused(tls_duts):
    """The server presents a valid chain for another name."""
    server, client = tls_pair(tls_duts, "wrong_host", ca=CA, send=b"x", expect=1)
    assert client.get("stage") == "handshake", client
    assert reasons(client["error"]) == {CN_MISMATCH}
    assert "n" not in server, server


def test_tls_rogue_ca_refused(tls_duts):
    server, client = tls_pair(tls_duts, "rogue_server", ca=CA, send=b"x", expect=1)
    assert client.get("stage") == "handshake", f"client accepted a rogue CA's certificate: {client}"
    assert reasons(client["error"]) == {NOT_TRUSTED}
    assert "n" not in server, server


def test_tls_client_trusting_only_rogue_root_refuses(tls_duts):
    _server, client = tls_pair(tls_duts, "server_ec", ca=("rogue_root",), send=b"x", expect=1)
    assert client.get("stage") == "handshake", client
    assert reasons(client["error"]) == {NOT_TRUSTED}


def test_tls_mutual_authentication(tls_duts):
    server, client = tls_pair(tls_duts, "server_ec", server_kw={"ca": CA, "verify": 2},
                              ca=CA, cert="client_ec", send=b"mutual", expect=6)
    assert "error" not in client and "error" not in server, (server, client)
    assert client["data"] == b"mutual"


def test_tls_server_refuses_rogue_client(tls_duts):
    server, client = tls_pair(tls_duts, "server_ec", server_kw={"ca": CA, "verify": 2},
                              ca=CA, cert="rogue_client", send=b"x", expect=1)
    assert server.get("stage") == "handshake", f"server accepted a rogue client: {server}"
    assert reasons(server["error"]) == {NOT_TRUSTED}
    assert "n" not in client or client["n"] == 0, client


def test_tls_untrusted_pattern_never_delivered(tls_duts):
    """A refused handshake delivers no application data, even when the client had some to send."""
    server, client = tls_pair(tls_duts, "rogue_server", ca=CA, send_pattern=1000, expect=1000)
    assert client.get("stage") == "handshake"
    assert server.get("n", 0) == 0, server
    assert "n" not in client, client
