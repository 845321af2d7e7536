"""The board as TLS client (the client() of firmware_py/hil_tls.py, or of the module HIL_TLS_CLIENT
names) against host servers: CPython's ssl (OpenSSL) sending good and bad certificate chains,
requiring client certificates, restricting versions and ciphers; OpenSSL behind memory BIOs for a
server whose records are fragmented or corrupted. The board connects to (dut.net.host_ip, port)
of a host listener (dut.net.listen())."""

from __future__ import annotations

import ssl
import time

import pytest
import tls_peers as tp
from tls_peers import board_time

from harness.pki import HOSTNAME

pytestmark = pytest.mark.requires("tls")

TLS12 = ssl.TLSVersion.TLSv1_2
PING = dict(send=b"ping", expect=4)


def serve(dut, module, ctx, *, served=None, **board) -> tuple[tp.Served, dict]:
    """Start the board's client against a host listener, serve one connection with ctx (None: a
    plaintext peer); returns (what the host saw, the board's result)."""
    served = served or {}
    with dut.net.listen() as listener:
        client = tp.BoardClient(dut, listener.getsockname()[1], module=module, **board)
        try:
            seen = tp.serve_once(listener, ctx, **served)
        except BaseException:
            client.stop()
            raise
        return seen, client.result()


def server(pki, pki_dir, cert="server_rsa", **kwargs) -> ssl.SSLContext:
    return tp.server_context(pki, cert, workdir=pki_dir, **kwargs)


def chain_seen(pki, leaf: str) -> list[tuple[int, str]]:
    return [(2, pki.root.sha256), (1, pki.intermediate.sha256), (0, pki[leaf].sha256)]


def pinged(result: dict, cipher: str | None = None) -> None:
    assert "error" not in result, result
    assert (result["end"], result["n"], result["data"]) == ("count", 4, b"ping"), result
    assert result["cipher"][1] == "TLSv1.2"
    if cipher:
        assert result["cipher"][0] == cipher


def rejected(seen: tp.Served, result: dict, reasons: set[str], alert: str) -> None:
    """The board refused the server's certificate: a verify failure with exactly these reasons, a
    fatal alert the host saw, and not one byte of application data either way."""
    assert result.get("stage") == "handshake", f"board accepted the server: {result}"
    assert tp.verify_reasons(result["error"]) == reasons
    assert "n" not in result
    assert isinstance(seen.error, ssl.SSLError) and seen.error.reason == alert, repr(seen.error)
    assert seen.received == b""


# --- good chains ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("cert", "cipher"), [
    ("server_rsa", "TLS-ECDHE-RSA-WITH-AES-256-GCM-SHA384"),
    ("server_ec", "TLS-ECDHE-ECDSA-WITH-AES-256-GCM-SHA384"),
], ids=["rsa", "ec"])
def test_client_accepts_good_chain(real_time_board, client_module, pki, pki_dir, cert, cipher):
    """Leaf + intermediate from the server, root on the board: verified through the intermediate."""
    seen, result = serve(real_time_board, client_module, server(pki, pki_dir, cert), served={"echo": 4},
                         peers=True, **PING)
    assert (seen.error, seen.version, seen.received) == (None, "TLSv1.2", b"ping")
    pinged(result, cipher)
    assert result["peers"] == chain_seen(pki, cert)


# --- bad chains -----------------------------------------------------------------------------------
@pytest.mark.parametrize(("cert", "chain"), [
    ("rogue_server", True),    # right name, issued by a CA the board does not trust
    ("self_signed", True),
    ("server_rsa", False),     # good leaf, but the server leaves out the intermediate
], ids=["untrusted_issuer", "self_signed", "missing_intermediate"])
def test_client_rejects_untrusted_chain(real_time_board, client_module, pki, pki_dir, cert, chain):
    seen, result = serve(real_time_board, client_module, server(pki, pki_dir, cert, chain=chain),
                         served={"echo": 4}, **PING)
    rejected(seen, result, {tp.NOT_TRUSTED}, "TLSV1_ALERT_UNKNOWN_CA")


@pytest.mark.parametrize(("cert", "hostname"), [
    ("wrong_host", HOSTNAME),              # the certificate names another host
    ("server_rsa", "other." + HOSTNAME),   # the board asks for another host
], ids=["certificate_names_other_host", "board_expects_other_host"])
def test_client_rejects_wrong_hostname(real_time_board, client_module, pki, pki_dir, cert, hostname):
    seen, result = serve(real_time_board, client_module, server(pki, pki_dir, cert), served={"echo": 4},
                         hostname=hostname, **PING)
    rejected(seen, result, {tp.CN_MISMATCH}, "SSLV3_ALERT_BAD_CERTIFICATE")


def test_client_rejects_expired_certificate(real_time_board, client_module, pki, pki_dir):
    assert pki["expired"].cert.not_valid_after_utc.timestamp() < board_time(real_time_board)
    seen, result = serve(real_time_board, client_module, server(pki, pki_dir, "expired"), served={"echo": 4},
                         **PING)
    rejected(seen, result, {tp.EXPIRED}, "SSLV3_ALERT_CERTIFICATE_EXPIRED")


def test_client_rejects_not_yet_valid_certificate(real_time_board, client_module, pki, pki_dir):
    assert pki["not_yet_valid"].cert.not_valid_before_utc.timestamp() > board_time(real_time_board)
    seen, result = serve(real_time_board, client_module, server(pki, pki_dir, "not_yet_valid"),
                         served={"echo": 4}, **PING)
    rejected(seen, result, {tp.FUTURE}, "SSLV3_ALERT_CERTIFICATE_UNKNOWN")


def test_client_cert_required_without_hostname_fails_before_handshake(tls_dut, client_module, pki):
    """CERT_REQUIRED and no server_hostname: ValueError from wrap_socket, and not one byte of
    ClientHello on the wire (the host, a plain TCP peer, sees only the close)."""
    seen, result = serve(tls_dut, client_module, None, hostname=None, **PING)
    assert (result["stage"], result["error"]) == ("handshake", ("ValueError", None,
                                                               "CERT_REQUIRED requires server_hostname"))
    assert seen.raw_first == b""


def test_client_verify_none_accepts_self_signed(tls_dut, pki, pki_dir):
    """Control case: with CERT_NONE (hil_tls itself, whatever HIL_TLS_CLIENT says) nothing is
    verified, so the self-signed server is accepted: what a broken client does everywhere."""
    seen, result = serve(tls_dut, "hil_tls", server(pki, pki_dir, "self_signed"), served={"echo": 4},
                         verify=0, **PING)
    assert seen.received == b"ping"
    pinged(result)


def test_board_clock_is_real_time(real_time_board):
    skew = board_time(real_time_board) - time.time()
    assert abs(skew) < 60, f"board clock {skew:+.1f} s off"


# --- versions and ciphers -------------------------------------------------------------------------
def test_client_gets_tls12_from_tls13_capable_server(tls_dut, client_module, pki, pki_dir):
    ctx = server(pki, pki_dir)
    assert ctx.maximum_version == ssl.TLSVersion.MAXIMUM_SUPPORTED
    seen, result = serve(tls_dut, client_module, ctx, served={"echo": 4}, **PING)
    assert seen.version == "TLSv1.2"
    pinged(result)


def test_client_refused_by_tls13_only_server(tls_dut, client_module, pki, pki_dir):
    seen, result = serve(tls_dut, client_module, server(pki, pki_dir, min_version=ssl.TLSVersion.TLSv1_3),
                         served={"echo": 4}, **PING)
    assert seen.error.reason == "UNSUPPORTED_PROTOCOL"
    assert (result["stage"], result["error"]) == ("handshake", tp.mbedtls("FATAL_ALERT_MESSAGE"))


def test_client_negotiates_tls13_with_tls13_only_server(tls_dut, client_module, pki, pki_dir):
    seen, result = serve(tls_dut, client_module, server(pki, pki_dir, min_version=ssl.TLSVersion.TLSv1_3),
                         served={"echo": 4}, **PING)
    assert seen.version == "TLSv1.3", repr(seen.error)
    assert result["cipher"][1] == "TLSv1.3"


OFFERED = ("ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-SHA384:AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
           "ECDHE-RSA-AES128-SHA256")


@pytest.mark.parametrize(("board_cipher", "host_cipher"), [
    ("TLS-ECDHE-RSA-WITH-AES-128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256"),
    ("TLS-ECDHE-RSA-WITH-AES-256-CBC-SHA384", "ECDHE-RSA-AES256-SHA384"),
    ("TLS-RSA-WITH-AES-256-GCM-SHA384", "AES256-GCM-SHA384"),
], ids=["ecdhe-aes128-gcm", "ecdhe-aes256-cbc", "rsa-aes256-gcm"])
def test_client_cipher_selection(tls_dut, client_module, pki, pki_dir, board_cipher, host_cipher):
    seen, result = serve(tls_dut, client_module, server(pki, pki_dir, ciphers=OFFERED, max_version=TLS12),
                         served={"echo": 4}, ciphers=[board_cipher], **PING)
    assert (seen.version, seen.cipher) == ("TLSv1.2", host_cipher)
    pinged(result, board_cipher)


def test_client_cipher_mismatch_fails_both_sides(tls_dut, client_module, pki, pki_dir):
    ctx = server(pki, pki_dir, ciphers="ECDHE-RSA-AES128-GCM-SHA256", max_version=TLS12)
    seen, result = serve(tls_dut, client_module, ctx, served={"echo": 4},
                         ciphers=["TLS-ECDHE-RSA-WITH-AES-256-GCM-SHA384"], **PING)
    assert seen.error.reason == "NO_SHARED_CIPHER"
    assert (result["stage"], result["error"]) == ("handshake", tp.mbedtls("FATAL_ALERT_MESSAGE"))


# --- client certificates --------------------------------------------------------------------------
@pytest.mark.parametrize("cert", ["client_rsa", "client_ec"])
def test_client_presents_certificate_to_mtls_server(tls_dut, client_module, pki, pki_dir, cert):
    ctx = server(pki, pki_dir, verify=ssl.CERT_REQUIRED)
    seen, result = serve(tls_dut, client_module, ctx, served={"echo": 4}, cert=cert, **PING)
    assert (seen.error, seen.peer_cn, seen.received) == (None, pki[cert].common_name, b"ping")
    pinged(result)


def test_client_without_certificate_rejected_by_mtls_server(tls_dut, client_module, pki, pki_dir):
    ctx = server(pki, pki_dir, verify=ssl.CERT_REQUIRED, max_version=TLS12)
    seen, result = serve(tls_dut, client_module, ctx, served={"echo": 4}, **PING)
    assert seen.error.reason == "PEER_DID_NOT_RETURN_A_CERTIFICATE"
    assert result["stage"] == "handshake"
    # the server's handshake_failure alert races the rest of the board's flight: the board either
    # reads the alert or finds the connection gone while still writing
    assert result["error"] in (tp.mbedtls("FATAL_ALERT_MESSAGE"), tp.EPIPE, tp.ECONNRESET), result


# --- data -----------------------------------------------------------------------------------------
def test_client_reads_large_download(tls_dut, client_module, pki, pki_dir):
    """300,000 bytes from the server in 16 KB records, read 1,000 bytes at a time."""
    payload = tp.pattern(300_000)
    seen, result = serve(tls_dut, client_module, server(pki, pki_dir, "server_ec"), served={"send": payload},
                         expect=len(payload), bufsize=1000)
    assert seen.error is None
    assert (result["end"], result["n"], result["sha"]) == ("count", len(payload), tp.sha(payload))


def test_client_writes_large_upload(tls_dut, client_module, pki, pki_dir):
    seen, result = serve(tls_dut, client_module, server(pki, pki_dir, "server_ec"),
                         served={"recv_all": 100_000}, send_pattern=100_000, expect=0)
    assert (seen.error, len(seen.received)) == (None, 100_000)
    assert seen.received == tp.pattern(100_000)
    assert "error" not in result


def test_client_close_notify_from_server_is_eof(tls_dut, client_module, pki, pki_dir):
    seen, result = serve(tls_dut, client_module, server(pki, pki_dir, "server_ec"), served={"send": b"bye"})
    assert seen.error is None
    assert (result["end"], result["n"], result["data"]) == ("eof", 3, b"bye")


def bio_server(dut, module, pki, pki_dir, rewrite, **board) -> tuple[tp.BioPeer, Exception | None, dict]:
    """A host OpenSSL server behind memory BIOs whose flights go through rewrite()."""
    with dut.net.listen() as listener:
        client = tp.BoardClient(dut, listener.getsockname()[1], module=module, **board)
        try:
            listener.settimeout(tp.TIMEOUT)
            conn, _ = listener.accept()
            conn.settimeout(tp.TIMEOUT)
            peer = tp.BioPeer(conn, server(pki, pki_dir, "server_ec", max_version=TLS12), server_side=True,
                              rewrite=rewrite)
            failure = None
            try:
                peer.handshake()
                data = peer.read(4)
                peer.write(data)
                peer.close_notify()
            except (ssl.SSLError, OSError) as exc:
                failure = exc
            conn.close()
        except BaseException:
            client.stop()
            raise
        return peer, failure, client.result()


@pytest.mark.parametrize("size", [4, 64])
def test_client_reassembles_fragmented_server_flight(tls_dut, client_module, pki, pki_dir, size):
    """ServerHello, Certificate, ServerKeyExchange, ServerHelloDone cut into `size`-byte records."""
    peer, failure, result = bio_server(tls_dut, client_module, pki, pki_dir,
                                       lambda data, n: tp.fragment_handshake(data, size) if n == 0 else data,
                                       **PING)
    assert len(tp.parse_records(peer.sent[0])) > 100 // size
    assert failure is None
    pinged(result)


def test_client_rejects_corrupted_server_finished(tls_dut, client_module, pki, pki_dir):
    """The server's encrypted Finished with one bit flipped: INVALID_MAC, no data."""
    peer, failure, result = bio_server(tls_dut, client_module, pki, pki_dir,
                                       lambda data, n: tp.flip_last_byte(data, -1) if n == 1 else data, **PING)
    assert [r.type for r in tp.parse_records(peer.sent[1])][-2:] == [tp.CHANGE_CIPHER_SPEC, tp.HANDSHAKE]
    assert failure is not None  # the board never sent its ping
    assert (result["stage"], result["error"]) == ("handshake", tp.mbedtls("INVALID_MAC"))


def test_client_to_plaintext_server(tls_dut, client_module, pki):
    """A plain HTTP server answers the ClientHello with text: a clean handshake error."""
    seen, result = serve(tls_dut, client_module, None, served={"send": b"HTTP/1.0 400 Bad Request\r\n\r\n"},
                         **PING)
    assert seen.raw_first[:1] == bytes([tp.HANDSHAKE])  # the board did send a ClientHello record
    assert (result["stage"], result["error"]) == ("handshake", tp.mbedtls("INVALID_RECORD"))


# --- what MicroPython lacks -------------------------------------------------------------------------
def test_client_session_resumption(tls_dut, client_module, pki, pki_dir):
    """The board's second connection offers the first one's session: the server resumes it."""
    ctx = server(pki, pki_dir, "server_ec", max_version=TLS12)
    with tls_dut.net.listen() as listener:
        client = tp.BoardClient(tls_dut, listener.getsockname()[1], module=client_module, conns=2, **PING)
        try:
            first = tp.serve_once(listener, ctx, echo=4)
            client.wait_connecting()
            second = tp.serve_once(listener, ctx, echo=4)
        except BaseException:
            client.stop()
            raise
        results = client.results()
    assert (first.session_reused, first.received, second.received) == (False, b"ping", b"ping")
    assert [r["end"] for r in results] == ["count", "count"]
    assert second.session_reused, "full handshake: the board did not offer its session"


def test_client_alpn(tls_dut, client_module, pki, pki_dir):
    ctx = server(pki, pki_dir, "server_ec")
    ctx.set_alpn_protocols(["http/1.1"])
    seen, result = serve(tls_dut, client_module, ctx, served={"echo": 4}, alpn=["h2", "http/1.1"], **PING)
    assert (seen.alpn, result.get("alpn")) == ("http/1.1", "http/1.1")
