"""The board as TLS server (firmware_py/hil_tls.py server(), an echo server) against host clients:
CPython's ssl (OpenSSL) as the normal peer; OpenSSL behind memory BIOs and tlslite-ng as hostile
peers that fragment, corrupt, abort and renegotiate. The board serves several connections per
case: after every failed one, the next connection must still work."""

from __future__ import annotations

import socket
import ssl
import struct

import pytest
import tls_peers as tp

pytestmark = pytest.mark.requires("tls")

TLS12 = ssl.TLSVersion.TLSv1_2


def host_client(pki, pki_dir, **kwargs) -> ssl.SSLContext:
    return tp.client_context(pki, workdir=pki_dir, **kwargs)


def talk(srv: tp.BoardServer, ctx: ssl.SSLContext, hostname: str, payload: bytes) -> dict:
    """Connect, handshake, echo payload, send close_notify; returns what the host negotiated."""
    tls = ctx.wrap_socket(srv.connect(), server_hostname=hostname, suppress_ragged_eofs=False)
    seen = {"version": tls.version(), "cipher": tls.cipher()[0], "alpn": tls.selected_alpn_protocol()}
    tls.sendall(payload)
    assert tp.recv_exact(tls, len(payload)) == payload
    tp.close_notify(tls)
    return seen


def echoed(result: dict, payload: bytes, cipher: str | None = None) -> None:
    """One connection's board result: handshake done, payload echoed, close_notify seen as EOF."""
    assert "error" not in result, result
    assert result["end"] == "eof", result
    assert (result["n"], result["sha"]) == (len(payload), tp.sha(payload))
    assert result["cipher"][1] == "TLSv1.2"
    if cipher:
        assert result["cipher"][0] == cipher


def good_client(srv: tp.BoardServer, pki, pki_dir, payload: bytes = b"still serving") -> None:
    talk(srv, host_client(pki, pki_dir), pki.hostname, payload)


# --- handshake and data ---------------------------------------------------------------------------
@pytest.mark.parametrize(("cert", "board_cipher", "host_cipher"), [
    ("server_rsa", "TLS-ECDHE-RSA-WITH-AES-256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384"),
    ("server_ec", "TLS-ECDHE-ECDSA-WITH-AES-256-GCM-SHA384", "ECDHE-ECDSA-AES256-GCM-SHA384"),
], ids=["rsa", "ec"])
def test_handshake_and_echo(tls_dut, pki, pki_dir, cert, board_cipher, host_cipher):
    payload = b"hello over TLS 1.2 " * 10
    with tp.BoardServer(tls_dut, cert) as srv:
        tls = host_client(pki, pki_dir, max_version=TLS12).wrap_socket(
            srv.connect(), server_hostname=pki.hostname, suppress_ragged_eofs=False)
        assert (tls.version(), tls.cipher()[0]) == ("TLSv1.2", host_cipher)
        # the host verified the board's leaf against root + intermediate for HOSTNAME
        assert tls.getpeercert(binary_form=True) == pki[cert].cert_der
        tls.sendall(payload)
        assert tp.recv_exact(tls, len(payload)) == payload
        tp.close_notify(tls)
    echoed(srv.results[0], payload, board_cipher)


def test_offering_tls13_negotiates_tls12(tls_dut, pki, pki_dir):
    """A default OpenSSL client offers 1.3 and 1.2; a 1.2-only board answers with 1.2."""
    ctx = host_client(pki, pki_dir)
    assert ctx.maximum_version == ssl.TLSVersion.MAXIMUM_SUPPORTED and ssl.HAS_TLSv1_3
    with tp.BoardServer(tls_dut, "server_ec") as srv:
        tls = ctx.wrap_socket(srv.connect(), server_hostname=pki.hostname, suppress_ragged_eofs=False)
        assert tls.version() == "TLSv1.2"
        tls.sendall(b"v")
        assert tp.recv_exact(tls, 1) == b"v"
        tp.close_notify(tls)
    echoed(srv.results[0], b"v")


def test_tls13_only_client_is_refused_cleanly(tls_dut, pki, pki_dir):
    """A 1.3-only ClientHello offers only TLS 1.3 suites: a 1.2-only server finds no common suite,
    says handshake_failure and keeps serving."""
    with tp.BoardServer(tls_dut, "server_ec", conns=2) as srv:
        ctx = host_client(pki, pki_dir, min_version=ssl.TLSVersion.TLSv1_3)
        with pytest.raises(ssl.SSLError) as info:
            ctx.wrap_socket(srv.connect(), server_hostname=pki.hostname)
        assert info.value.reason == "SSLV3_ALERT_HANDSHAKE_FAILURE"
        good_client(srv, pki, pki_dir)
    first, second = srv.results
    assert (first["stage"], first["error"]) == ("handshake", tp.mbedtls("HANDSHAKE_FAILURE"))
    echoed(second, b"still serving")


def test_tls13_negotiated_with_tls13_only_client(tls_dut, pki, pki_dir):
    with tp.BoardServer(tls_dut, "server_ec", conns=1) as srv:
        ctx = host_client(pki, pki_dir, min_version=ssl.TLSVersion.TLSv1_3)
        assert talk(srv, ctx, pki.hostname, b"1.3")["version"] == "TLSv1.3"
    echoed(srv.results[0], b"1.3")


# --- ciphers --------------------------------------------------------------------------------------
OFFERED = ("ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-SHA384:AES128-SHA256:ECDHE-RSA-AES256-GCM-SHA384:"
           "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-SHA256")


@pytest.mark.parametrize(("cert", "board_cipher", "host_cipher"), [
    ("server_rsa", "TLS-ECDHE-RSA-WITH-AES-128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256"),
    ("server_ec", "TLS-ECDHE-ECDSA-WITH-AES-256-CBC-SHA384", "ECDHE-ECDSA-AES256-SHA384"),
    ("server_rsa", "TLS-RSA-WITH-AES-128-CBC-SHA256", "AES128-SHA256"),
], ids=["ecdhe-rsa-aes128-gcm", "ecdhe-ecdsa-aes256-cbc", "rsa-aes128-cbc"])
def test_server_cipher_selection(tls_dut, pki, pki_dir, cert, board_cipher, host_cipher):
    """The host offers every candidate; the board, restricted to one suite, picks exactly it."""
    with tp.BoardServer(tls_dut, cert, ciphers=[board_cipher]) as srv:
        ctx = host_client(pki, pki_dir, max_version=TLS12, ciphers=OFFERED)
        assert talk(srv, ctx, pki.hostname, b"cipher")["cipher"] == host_cipher
    echoed(srv.results[0], b"cipher", board_cipher)


def test_server_cipher_mismatch_fails_both_sides(tls_dut, pki, pki_dir):
    with tp.BoardServer(tls_dut, "server_ec", conns=2, ciphers=["TLS-ECDHE-ECDSA-WITH-AES-256-GCM-SHA384"]) as srv:
        ctx = host_client(pki, pki_dir, max_version=TLS12, ciphers="ECDHE-ECDSA-AES128-GCM-SHA256")
        with pytest.raises(ssl.SSLError) as info:
            ctx.wrap_socket(srv.connect(), server_hostname=pki.hostname)
        assert info.value.reason == "SSLV3_ALERT_HANDSHAKE_FAILURE"
        good_client(srv, pki, pki_dir)
    first, second = srv.results
    assert (first["stage"], first["error"]) == ("handshake", tp.mbedtls("HANDSHAKE_FAILURE"))
    echoed(second, b"still serving", "TLS-ECDHE-ECDSA-WITH-AES-256-GCM-SHA384")


def test_unknown_cipher_name_rejected_by_board(tls_dut):
    error = tls_dut.eval(
        "import hil_tls\n"
        "try:\n"
        "    hil_tls.context(True, ciphers=['TLS-NOT-A-SUITE'])\n"
        "    print(repr(None))\n"
        "except Exception as e:\n"
        "    print(repr(hil_tls.error(e)))")
    assert error == tp.mbedtls("BAD_CONFIG")


# --- mutual TLS -----------------------------------------------------------------------------------
def chain_seen(pki, leaf: str) -> list[tuple[int, str]]:
    """What the board's verify callback reports for a chain root -> intermediate -> leaf."""
    return [(2, pki.root.sha256), (1, pki.intermediate.sha256), (0, pki[leaf].sha256)]


@pytest.mark.parametrize("client_cert", ["client_rsa", "client_ec"])
def test_mtls_required_accepts_trusted_client(tls_dut, pki, pki_dir, server_module, client_cert):
    with tp.BoardServer(tls_dut, "server_ec", module=server_module, ca=("root",), verify=2, peers=True) as srv:
        talk(srv, host_client(pki, pki_dir, cert=client_cert), pki.hostname, b"mutual")
    echoed(srv.results[0], b"mutual")
    assert srv.results[0]["peers"] == chain_seen(pki, client_cert)


def test_mtls_required_rejects_client_without_certificate(tls_dut, pki, pki_dir, server_module):
    with tp.BoardServer(tls_dut, "server_ec", module=server_module, conns=2, ca=("root",), verify=2,
                        peers=True) as srv:
        with pytest.raises((ssl.SSLError, ConnectionError)):  # no alert: the board just closes (RST)
            tls = host_client(pki, pki_dir, max_version=TLS12).wrap_socket(
                srv.connect(), server_hostname=pki.hostname, suppress_ragged_eofs=False)
            tls.sendall(b"never")
            tls.recv(10)
        talk(srv, host_client(pki, pki_dir, cert="client_ec"), pki.hostname, b"with cert")
    first, second = srv.results
    assert (first["stage"], first["error"], first["peers"]) == (
        "handshake", tp.mbedtls("NO_CLIENT_CERTIFICATE"), [])
    assert "n" not in first  # nothing was read as data
    echoed(second, b"with cert")


def test_mtls_required_rejects_untrusted_client(tls_dut, pki, pki_dir, server_module):
    with tp.BoardServer(tls_dut, "server_ec", module=server_module, conns=2, ca=("root",), verify=2,
                        peers=True) as srv:
        with pytest.raises((ssl.SSLError, ConnectionResetError)) as info:
            tls = host_client(pki, pki_dir, cert="rogue_client", max_version=TLS12).wrap_socket(
                srv.connect(), server_hostname=pki.hostname)
            tls.recv(10)
        # the board sends unknown_ca and closes with the rest of our flight unread, so its TCP
        # answers with RST; when that overtakes our reading the alert, we see only the reset
        if isinstance(info.value, ssl.SSLError):
            assert info.value.reason == "TLSV1_ALERT_UNKNOWN_CA"
        talk(srv, host_client(pki, pki_dir, cert="client_ec"), pki.hostname, b"trusted")
    first, second = srv.results
    assert first["stage"] == "handshake"
    assert tp.verify_reasons(first["error"]) == {tp.NOT_TRUSTED}
    assert first["peers"] == [(0, pki["rogue_client"].sha256)]
    echoed(second, b"trusted")
    assert second["peers"] == chain_seen(pki, "client_ec")


def test_mtls_optional_accepts_client_without_certificate(tls_dut, pki, pki_dir):
    with tp.BoardServer(tls_dut, "server_ec", conns=2, ca=("root",), verify=1, peers=True) as srv:
        talk(srv, host_client(pki, pki_dir), pki.hostname, b"anonymous")
        talk(srv, host_client(pki, pki_dir, cert="client_rsa"), pki.hostname, b"named")
    anonymous, named = srv.results
    echoed(anonymous, b"anonymous")
    assert anonymous["peers"] == []
    echoed(named, b"named")
    assert named["peers"] == chain_seen(pki, "client_rsa")


def test_mtls_optional_rejects_untrusted_client(tls_dut, pki, pki_dir):
    """CERT_OPTIONAL as CPython/OpenSSL define it: a certificate is not required, but one that is
    presented must verify."""
    with tp.BoardServer(tls_dut, "server_ec", conns=1, ca=("root",), verify=1, peers=True) as srv:
        try:
            talk(srv, host_client(pki, pki_dir, cert="rogue_client", max_version=TLS12), pki.hostname, b"rogue")
        except (ssl.SSLError, ConnectionError):
            pass
    assert srv.results[0].get("stage") == "handshake", srv.results[0]
    assert tp.verify_reasons(srv.results[0]["error"]) == {tp.NOT_TRUSTED}


def test_mtls_none_requests_no_certificate(tls_dut, pki, pki_dir):
    with tp.BoardServer(tls_dut, "server_ec", conns=1, ca=("root",), verify=0, peers=True) as srv:
        talk(srv, host_client(pki, pki_dir, cert="client_ec"), pki.hostname, b"unasked")
    echoed(srv.results[0], b"unasked")
    assert srv.results[0]["peers"] == []  # no CertificateRequest, so no certificate to verify


# --- data across records --------------------------------------------------------------------------
def test_large_payload_spans_records(tls_dut, pki, pki_dir):
    """40,000-byte writes become three records (16,384 + 16,384 + 7,232); the board reads 1,000
    bytes at a time, so every record takes several reads and reads never align with records."""
    chunk = 40_000
    payload = tp.pattern(chunk * 5)
    with tp.BoardServer(tls_dut, "server_ec", bufsize=1000) as srv:
        tls = host_client(pki, pki_dir).wrap_socket(srv.connect(), server_hostname=pki.hostname,
                                                    suppress_ragged_eofs=False)
        back = bytearray()
        for i in range(0, len(payload), chunk):
            tls.sendall(payload[i : i + chunk])
            back += tp.recv_exact(tls, chunk)
        assert bytes(back) == payload
        tp.close_notify(tls)
    echoed(srv.results[0], payload)


def test_tiny_application_records_reassembled(tls_dut, pki):
    """300 bytes sent as 300 one-byte records (tlslite-ng) come back whole."""
    payload = tp.pattern(300)
    with tp.BoardServer(tls_dut, "server_ec") as srv:
        conn = tp.tlslite_client(srv.connect(), pki)
        conn.recordSize = 1
        conn.write(payload)
        assert bytes(conn.read(max=300, min=300)) == payload
        conn.recordSize = 2**14  # a whole close_notify: TLS 1.2 receivers may refuse split alerts
        conn.close()
    echoed(srv.results[0], payload)


def send_with_empty_records(srv, pki, parts: list[bytes]) -> bytes:
    """Send parts as records (b"": a zero-length application_data record); returns the echo."""
    conn = tp.tlslite_client(srv.connect(), pki)
    total = b"".join(parts)
    for part in parts:
        tp.tlslite_send_record(conn, tp.APPLICATION_DATA, part)
    try:
        back = bytes(conn.read(max=len(total), min=len(total)))
    except ConnectionError:
        back = b""
    conn.close()
    return back


def test_zero_length_records_tolerated(tls_dut, pki):
    """Empty application_data records (allowed by RFC 5246 6.2.1; OpenSSL used to send them
    before CBC records) between data records are skipped."""
    with tp.BoardServer(tls_dut, "server_ec") as srv:
        assert send_with_empty_records(srv, pki, [b"abc", b"", b"def", b"", b"ghi"]) == b"abcdefghi"
    echoed(srv.results[0], b"abcdefghi")


def test_consecutive_zero_length_records_tolerated(tls_dut, pki):
    """Two empty records in a row are as legal as one: the data after them must still arrive."""
    with tp.BoardServer(tls_dut, "server_ec") as srv:
        back = send_with_empty_records(srv, pki, [b"abc", b"", b"", b"def"])
    echoed(srv.results[0], b"abcdef")
    assert back == b"abcdef"


# --- fragmented handshakes ------------------------------------------------------------------------
def fragmented_handshake(srv, pki, pki_dir, size: int, **peer) -> tp.BioPeer:
    ctx = host_client(pki, pki_dir, max_version=TLS12)
    peer_ = tp.BioPeer(srv.connect(), ctx, hostname=pki.hostname,
                       rewrite=lambda data, _n: tp.fragment_handshake(data, size), **peer)
    peer_.handshake()
    peer_.write(b"fragmented")
    assert peer_.read(10) == b"fragmented"
    peer_.close_notify()
    return peer_


@pytest.mark.parametrize("size", [4, 17, 100])
def test_handshake_messages_fragmented_across_records(tls_dut, pki, pki_dir, size):
    """ClientHello, ClientKeyExchange (every plaintext handshake message) cut into records of
    `size` bytes: the board reassembles them."""
    with tp.BoardServer(tls_dut, "server_rsa") as srv:
        peer = fragmented_handshake(srv, pki, pki_dir, size)
        hello_records = tp.parse_records(peer.sent[0])
        assert len(hello_records) > 1 and all(len(r.payload) <= size for r in hello_records)
    echoed(srv.results[0], b"fragmented")


def test_handshake_fragments_smaller_than_message_header(tls_dut, pki, pki_dir):
    """One-byte handshake records: RFC 5246 allows any fragmentation of handshake messages."""
    with tp.BoardServer(tls_dut, "server_rsa") as srv:
        try:
            fragmented_handshake(srv, pki, pki_dir, 1)
        except (ssl.SSLError, ConnectionError):
            pass
    echoed(srv.results[0], b"fragmented")


def test_records_split_across_tcp_segments(tls_dut, pki, pki_dir):
    """Every byte of the client's flights in its own send() with TCP_NODELAY: the board's record
    reader must loop over short socket reads."""
    with tp.BoardServer(tls_dut, "server_ec") as srv:
        ctx = host_client(pki, pki_dir, max_version=TLS12)
        peer = tp.BioPeer(srv.connect(), ctx, hostname=pki.hostname, dribble=True)
        peer.handshake()
        peer.write(b"dribbled")
        assert peer.read(8) == b"dribbled"
        peer.close_notify()
    echoed(srv.results[0], b"dribbled")


# --- corruption -----------------------------------------------------------------------------------
def test_corrupted_record_never_delivered(tls_dut, pki, pki_dir):
    """One flipped bit in an application_data record's AEAD tag: the board drops the connection
    with INVALID_MAC and never passes the bytes on."""
    with tp.BoardServer(tls_dut, "server_ec", conns=2) as srv:
        conn = tp.tlslite_client(srv.connect(), pki)
        conn.tamper.corrupt_next = True
        conn.write(b"secret")
        # connection closed, nothing echoed: at most the bad_record_mac alert comes first (sent
        # where MBEDTLS_SSL_ALL_ALERT_MESSAGES is on; test_corrupted_record_gets_bad_record_mac_alert)
        record = tp.tlslite_next_record(conn)
        assert record in (None, (tp.ALERT, bytes([tp.FATAL, tp.BAD_RECORD_MAC]))), record
        conn.tamper.sock.close()
        good_client(srv, pki, pki_dir)
    first, second = srv.results
    assert first["end"] == tp.mbedtls("INVALID_MAC")
    assert (first["n"], first["data"]) == (0, b"")
    echoed(second, b"still serving")


def test_corrupted_record_gets_bad_record_mac_alert(tls_dut, pki):
    """RFC 5246 7.2.2: a record with a bad MAC is answered with a fatal bad_record_mac alert."""
    with tp.BoardServer(tls_dut, "server_ec", conns=1) as srv:
        conn = tp.tlslite_client(srv.connect(), pki)
        conn.tamper.corrupt_next = True
        conn.write(b"secret")
        record = tp.tlslite_next_record(conn)
        conn.tamper.sock.close()
    assert record == (tp.ALERT, bytes([tp.FATAL, tp.BAD_RECORD_MAC]))


def corrupt_finished(srv, pki, pki_dir) -> Exception:
    """A client whose second flight (ClientKeyExchange, ChangeCipherSpec, Finished) has the
    encrypted Finished record's tag flipped; returns how the client's handshake ended."""
    ctx = host_client(pki, pki_dir, max_version=TLS12)
    peer = tp.BioPeer(srv.connect(), ctx, hostname=pki.hostname,
                      rewrite=lambda data, n: tp.flip_last_byte(data, -1) if n == 1 else data)
    with pytest.raises((ssl.SSLError, ConnectionError)) as info:
        peer.handshake()
    types = [r.type for r in tp.parse_records(peer.sent[1])]
    assert types[-2:] == [tp.CHANGE_CIPHER_SPEC, tp.HANDSHAKE]
    peer.sock.close()
    return info.value


def test_corrupted_finished_record_rejected(tls_dut, pki, pki_dir):
    with tp.BoardServer(tls_dut, "server_rsa", conns=2) as srv:
        corrupt_finished(srv, pki, pki_dir)
        good_client(srv, pki, pki_dir)
    first, second = srv.results
    assert (first["stage"], first["error"]) == ("handshake", tp.mbedtls("INVALID_MAC"))
    echoed(second, b"still serving")


def test_corrupted_finished_record_gets_bad_record_mac_alert(tls_dut, pki, pki_dir):
    with tp.BoardServer(tls_dut, "server_rsa", conns=1) as srv:
        ended = corrupt_finished(srv, pki, pki_dir)
    # OpenSSL reports a received alert as SSLV3_ALERT_<NAME>; a bare close as an EOF
    assert getattr(ended, "reason", None) == "SSLV3_ALERT_BAD_RECORD_MAC", repr(ended)


def test_wrong_finished_verify_data_gets_decrypt_error(tls_dut, pki, pki_dir):
    """A correctly encrypted Finished whose verify_data is wrong (tlslite-ng): fatal
    decrypt_error alert (RFC 5246 7.4.9), and the server keeps serving."""
    from tlslite.errors import TLSRemoteAlert

    with tp.BoardServer(tls_dut, "server_ec", conns=2) as srv:
        with pytest.raises(TLSRemoteAlert) as info:
            tp.tlslite_client(srv.connect(), pki, corrupt_finished=True)
        assert (info.value.level, info.value.description) == (tp.FATAL, tp.DECRYPT_ERROR)
        good_client(srv, pki, pki_dir)
    first, second = srv.results
    assert (first["stage"], first["error"]) == ("handshake", tp.mbedtls("HANDSHAKE_FAILURE"))
    echoed(second, b"still serving")


# --- renegotiation, plaintext, close ---------------------------------------------------------------
def test_client_initiated_renegotiation_refused(tls_dut, pki):
    """A ClientHello on an established connection: the board answers no_renegotiation (a warning,
    RFC 5246 7.2.2) and the connection carries on."""
    from tlslite.constants import CipherSuite
    from tlslite.messages import ClientHello

    with tp.BoardServer(tls_dut, "server_ec") as srv:
        conn = tp.tlslite_client(srv.connect(), pki)
        hello = ClientHello().create((3, 3), bytearray(32), bytearray(0),
                                     [CipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256])
        tp.tlslite_send_record(conn, tp.HANDSHAKE, bytes(hello.write()))
        assert tp.tlslite_next_record(conn) == (tp.ALERT, bytes([tp.WARNING, tp.NO_RENEGOTIATION]))
        conn.write(b"after")
        assert bytes(conn.read(max=5, min=5)) == b"after"
        conn.close()
    echoed(srv.results[0], b"after")


def test_plaintext_to_tls_listener(tls_dut, pki, pki_dir):
    """An HTTP request to the TLS port: the handshake fails with INVALID_RECORD, the board sends
    nothing back (no bytes of TLS to a non-TLS peer) and keeps serving."""
    with tp.BoardServer(tls_dut, "server_rsa", conns=2) as srv:
        with srv.connect() as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: hil-tls.test\r\n\r\n")
            assert tp.read_all(sock) == b""
        good_client(srv, pki, pki_dir)
    first, second = srv.results
    assert (first["stage"], first["error"]) == ("handshake", tp.mbedtls("INVALID_RECORD"))
    echoed(second, b"still serving")


def test_close_notify_from_host_is_eof(tls_dut, pki, pki_dir):
    """Data then close_notify: the board reads the data, then EOF (recv() == b''), not an error."""
    with tp.BoardServer(tls_dut, "server_ec") as srv:
        ctx = host_client(pki, pki_dir, max_version=TLS12)
        peer = tp.BioPeer(srv.connect(), ctx, hostname=pki.hostname)
        peer.handshake()
        peer.write(b"last words")
        assert peer.read(10) == b"last words"
        peer.close_notify()
        assert tp.parse_records(peer.sent[-1])[-1].type == tp.ALERT  # the close_notify went out
        peer.sock.shutdown(socket.SHUT_WR)
        assert tp.read_all(peer.sock) == b""  # the board closed without sending anything more
    echoed(srv.results[0], b"last words")


def test_tcp_close_without_close_notify_is_not_eof(tls_dut, pki, pki_dir):
    """A bare TCP FIN in the middle of a TLS stream is a truncation, not a clean end: the board must
    see an error (mbedTLS: CONN_EOF), so an attacker cannot cut a message short unnoticed."""
    with tp.BoardServer(tls_dut, "server_ec") as srv:
        tls = host_client(pki, pki_dir).wrap_socket(srv.connect(), server_hostname=pki.hostname)
        tls.sendall(b"cut")
        assert tp.recv_exact(tls, 3) == b"cut"
        tls.shutdown(socket.SHUT_WR)  # TCP FIN; CPython's shutdown() sends no close_notify
        tp.read_all(tls)
        tls.close()
    result = srv.results[0]
    assert (result["n"], result["end"]) == (3, tp.mbedtls("CONN_EOF"))


def test_board_close_sends_close_notify(tls_dut, pki, pki_dir):
    """The board sends 1,000 bytes and closes: the host must read them, then a close_notify."""
    with tp.BoardServer(tls_dut, "server_ec", send=1000) as srv:
        tls = host_client(pki, pki_dir).wrap_socket(srv.connect(), server_hostname=pki.hostname,
                                                    suppress_ragged_eofs=False)
        assert tp.recv_exact(tls, 1000) == tp.pattern(1000)
        try:
            end = tls.recv(1)
        except ssl.SSLEOFError as exc:
            end = exc
        tls.close()
    assert srv.results[0]["end"] == "sent"
    assert end == b"", f"after the data: {end!r} instead of close_notify"


# --- aborted handshakes -----------------------------------------------------------------------------
def drop_finished(data: bytes, n: int) -> bytes:
    return data if n == 0 else b"".join(r.encode() for r in tp.parse_records(data)[:-1])


STAGES = {
    # stage: (rewrite of the client's flights, flights to send before stopping)
    "tcp_connect": None,
    "partial_client_hello": (lambda data, n: data[:20], 1),
    "client_hello": (None, 1),
    "server_flight_read": (lambda data, n: data if n == 0 else b"", 2),
    "key_exchange_without_finished": (drop_finished, 2),
    "finished": (None, 2),
}


@pytest.mark.parametrize("close", ["fin", "rst"])
@pytest.mark.parametrize("stage", list(STAGES))
def test_handshake_aborted_server_keeps_serving(tls_dut, pki, pki_dir, stage, close):
    """The client stops at `stage` and goes away (fin: half-close, then wait for the board to
    close; rst: SO_LINGER 0). The board reports exactly that and serves the next client."""
    with tp.BoardServer(tls_dut, "server_ec", conns=2) as srv:
        sock = srv.connect()
        if STAGES[stage]:
            rewrite, flights = STAGES[stage]
            tp.BioPeer(sock, host_client(pki, pki_dir, max_version=TLS12), hostname=pki.hostname,
                       rewrite=rewrite).handshake(stop_after_flights=flights)
        # go away only from a connection the board's accept() has returned: on lwIP boards (modlwip)
        # a connection still in the accept queue loses a bare FIN (its recv callback refuses the
        # close, which lwIP does not repeat: the accepted socket never sees EOF) and is dropped
        # on a RST (accept() never returns it), where Linux returns it to see EOF or ECONNRESET;
        # without this wait those cases race the host's close against the board's accept()
        srv.wait_accepted()
        if close == "rst":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        else:
            sock.shutdown(socket.SHUT_WR)
            tp.read_all(sock)  # whatever the board still sends, until it closes
        sock.close()
        good_client(srv, pki, pki_dir)
    first, second = srv.results
    if close == "fin":
        gone = {tp.mbedtls("CONN_EOF")}
    else:
        # a reset reaches a reading board as ECONNRESET, a writing one as EPIPE; under QEMU user-mode
        # networking the host's TCP ends in slirp, which closes the guest's side its own way
        gone = {tp.ECONNRESET, tp.EPIPE} | ({tp.mbedtls("CONN_EOF")} if tls_dut.net.mode == "user" else set())
    if stage == "finished" and (close == "fin" or "cipher" in first):
        # the board completed the handshake (for rst: unless the reset overtook its own Finished),
        # then found the peer gone instead of data
        assert first["cipher"] == ("TLS-ECDHE-ECDSA-WITH-AES-256-GCM-SHA384", "TLSv1.2")
        assert first["n"] == 0
        assert first["end"] == "eof" or first["end"] in gone, first
    else:
        assert first["stage"] == "handshake" and first["error"] in gone, first
    echoed(second, b"still serving")


# --- what MicroPython lacks ---------------------------------------------------------------------------
def test_session_resumption(tls_dut, pki, pki_dir):
    """A client offering the first connection's session gets an abbreviated handshake."""
    ctx = host_client(pki, pki_dir, max_version=TLS12)
    with tp.BoardServer(tls_dut, "server_ec", conns=2) as srv:
        first = ctx.wrap_socket(srv.connect(), server_hostname=pki.hostname)
        first.sendall(b"1")
        tp.recv_exact(first, 1)
        session = first.session
        tp.close_notify(first)
        second = ctx.wrap_socket(srv.connect(), server_hostname=pki.hostname, session=session)
        reused = second.session_reused
        second.sendall(b"2")
        tp.recv_exact(second, 1)
        tp.close_notify(second)
    assert reused, "full handshake: the board did not resume the session"


def test_alpn(tls_dut, pki, pki_dir):
    with tp.BoardServer(tls_dut, "server_ec", alpn=["http/1.1"]) as srv:
        ctx = host_client(pki, pki_dir)
        ctx.set_alpn_protocols(["h2", "http/1.1"])
        assert talk(srv, ctx, pki.hostname, b"alpn")["alpn"] == "http/1.1"
    assert srv.results[0]["alpn"] == "http/1.1"
