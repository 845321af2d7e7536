"""The board as TLS server against hostile tlslite-ng clients (tls_peers.hostile_client): message
surgery on the handshake, odd versions, a very large ClientHello, negotiated extensions, CBC
corruption, loose parsing and a capability list. What is due comes from RFC 5246 (TLS 1.2),
RFC 8446 (its version rules for TLS 1.2 servers), RFC 6066/8422/7627/7366/5746/9155, as tlsfuzzer
expects it. Every case serves a second, good client afterwards: a hostile peer must not take the
server down. Where the board answers otherwise, expected_failures.toml says exactly how (which
alert or a silent close, after which message)."""

from __future__ import annotations

import pytest
import tls_peers as tp

pytestmark = pytest.mark.requires("tls")

ECHO = tp.pattern(2000)  # more than one board read (1,024 bytes): a short echo write shows


def hostile(tls_dut, pki, pki_dir, module: str, *, board_cert: str = "server_ec", server: dict | None = None,
            good_cert: str | None = None, **client) -> tp.Outcome:
    """One hostile connection (tls_peers.hostile_client with `client`), then a good one (OpenSSL,
    with good_cert where the board asks for one) that must be served; returns the hostile
    connection's Outcome with the board's own result in .board."""
    with tp.BoardServer(tls_dut, board_cert, conns=2, module=module, **(server or {})) as srv:
        out = tp.hostile_client(srv.connect(), pki, workdir=pki_dir, **client)
        ctx = tp.client_context(pki, workdir=pki_dir, cert=good_cert)
        try:
            tls = ctx.wrap_socket(srv.connect(), server_hostname=pki.hostname, suppress_ragged_eofs=False)
            tls.sendall(b"still serving")
            back = tp.recv_exact(tls, 13)
            tp.close_notify(tls)
        except (OSError, EOFError) as exc:  # refused, reset, EOF, an SSLError
            back = exc
        assert back == b"still serving", f"the board stopped serving after the hostile peer: {back!r}"
    out.board, second = srv.results
    assert (second.get("end"), second.get("n")) == ("eof", 13), f"good client after the hostile one: {second}"
    return out


def refused(out: tp.Outcome, *alerts: int) -> None:
    """The board sent a fatal alert (one of `alerts`) and closed: RFC 5246 7.2.2 / 7.2 (a fatal
    alert, then the connection closes)."""
    assert not out.completed, out.describe()
    due = " or ".join(tp.ALERT_NAMES[a] for a in alerts)
    assert out.alert is not None and out.alert[0] == tp.FATAL and out.alert[1] in alerts, (
        f"{due} is due; the board: {out.describe()}")
    assert out.closed in ("eof", "reset"), f"after its alert the board left the connection open: {out.describe()}"


def completed(out: tp.Outcome) -> tp.ServerHelloSeen:
    assert out.completed, out.describe()
    hello = out.server_hello
    assert hello is not None and hello.version == (3, 3), out.describe()
    assert out.board.get("cipher", (None, None))[1] == "TLSv1.2", out.board
    return hello


def _msg_type(msg) -> int | None:
    """A tlslite handshake message's type (None for other content types)."""
    data = bytes(msg.write())
    return data[0] if msg.contentType == tp.HANDSHAKE and data else None


def _body(msg) -> bytes:
    return bytes(msg.write())[4:]


def set_ext(hello, ext_type: int, body: bytes | None) -> None:
    """Replace (or with None remove) one ClientHello extension, raw bytes."""
    from tlslite.extensions import TLSExtension

    hello.extensions = [e for e in hello.extensions if e.extType != ext_type]
    if body is not None:
        hello.extensions.append(TLSExtension(extType=ext_type).create(bytearray(body)))


def point_formats(formats: list[int]):
    """An ec_point_formats list as tlslite's own extension object (its client reads it back)."""

    def edit(hello) -> None:
        from tlslite.extensions import ECPointFormatsExtension

        set_ext(hello, tp.EXT_EC_POINT_FORMATS, None)
        hello.extensions.append(ECPointFormatsExtension().create(formats))

    return edit


def u16_list(values: list[int]) -> bytes:
    data = b"".join(v.to_bytes(2, "big") for v in values)
    return len(data).to_bytes(2, "big") + data


# --- fatal handshake errors: a fatal alert is due, then close ---------------------------------------
def truncated_client_hello(hello) -> bytes:
    """The ClientHello with its last 7 bytes cut (the extensions then overrun the message)."""
    return tp.handshake_message(tp.CLIENT_HELLO, _body(hello)[:-7])


def odd_cipher_suites(hello) -> bytes:
    """cipher_suites with an odd length (one stray byte after the last suite)."""
    body = _body(hello)
    at = 35 + body[34]
    n = int.from_bytes(body[at : at + 2], "big")
    return tp.handshake_message(tp.CLIENT_HELLO, body[:at] + (n + 1).to_bytes(2, "big")
                                + body[at + 2 : at + 2 + n] + b"\x00" + body[at + 2 + n :])


def skip_cke(msg):
    return [] if _msg_type(msg) == tp.CLIENT_KEY_EXCHANGE else [msg]


def duplicate_cke(msg):
    return [msg, msg] if _msg_type(msg) == tp.CLIENT_KEY_EXCHANGE else [msg]


def truncate_cke(msg):
    """The ECDHE point 8 bytes short of its stated length (handshake length fixed up)."""
    if _msg_type(msg) != tp.CLIENT_KEY_EXCHANGE:
        return [msg]
    return [tp.raw_message(tp.HANDSHAKE, tp.handshake_message(tp.CLIENT_KEY_EXCHANGE, _body(msg)[:-8]))]


def malformed_ccs(msg):
    return [tp.raw_message(tp.CHANGE_CIPHER_SPEC, b"\x01\x01")] if msg.contentType == tp.CHANGE_CIPHER_SPEC else [msg]


def heartbeat_first(msg):
    """A heartbeat request (RFC 6520: type 1, 16 bytes payload, 16 padding) where the
    ClientKeyExchange is due; the board never negotiated heartbeats."""
    if _msg_type(msg) != tp.CLIENT_KEY_EXCHANGE:
        return [msg]
    return [tp.raw_message(tp.HEARTBEAT, b"\x01\x00\x10" + bytes(range(16)) + bytes(16)), msg]


def two_byte_certificate_verify(msg):
    """A CertificateVerify of only its signature scheme (ecdsa_secp256r1_sha256), no signature."""
    if _msg_type(msg) != tp.CERTIFICATE_VERIFY:
        return [msg]
    return [tp.raw_message(tp.HANDSHAKE, tp.handshake_message(tp.CERTIFICATE_VERIFY, b"\x04\x03"))]


def test_truncated_client_hello_gets_decode_error(tls_dut, pki, pki_dir, server_module):
    refused(hostile(tls_dut, pki, pki_dir, server_module, hello=truncated_client_hello), tp.DECODE_ERROR)


def test_odd_cipher_suites_length_gets_decode_error(tls_dut, pki, pki_dir, server_module):
    refused(hostile(tls_dut, pki, pki_dir, server_module, hello=odd_cipher_suites), tp.DECODE_ERROR)


# RFC 5246 7.4: a message out of order is unexpected_message, one that does not parse decode_error
def test_duplicated_client_key_exchange_gets_unexpected_message(tls_dut, pki, pki_dir, server_module):
    refused(hostile(tls_dut, pki, pki_dir, server_module, tamper=duplicate_cke), tp.UNEXPECTED_MESSAGE)


def test_skipped_client_key_exchange_gets_unexpected_message(tls_dut, pki, pki_dir, server_module):
    refused(hostile(tls_dut, pki, pki_dir, server_module, tamper=skip_cke), tp.UNEXPECTED_MESSAGE)


def test_truncated_client_key_exchange_gets_decode_error(tls_dut, pki, pki_dir, server_module):
    refused(hostile(tls_dut, pki, pki_dir, server_module, tamper=truncate_cke), tp.DECODE_ERROR)


def test_malformed_change_cipher_spec_gets_alert(tls_dut, pki, pki_dir, server_module):
    """ChangeCipherSpec 01 01: TLS 1.2 names no alert for it (TLS 1.3: unexpected_message)."""
    refused(hostile(tls_dut, pki, pki_dir, server_module, tamper=malformed_ccs),
            tp.UNEXPECTED_MESSAGE, tp.DECODE_ERROR, tp.ILLEGAL_PARAMETER)


def test_heartbeat_record_gets_unexpected_message(tls_dut, pki, pki_dir, server_module):
    """RFC 5246 6: an unexpected record type gets unexpected_message (heartbeats never negotiated)."""
    refused(hostile(tls_dut, pki, pki_dir, server_module, tamper=heartbeat_first), tp.UNEXPECTED_MESSAGE)


def test_two_byte_certificate_verify_gets_decode_error(tls_dut, pki, pki_dir, server_module):
    """Mutual TLS: a CertificateVerify with no signature after the scheme (RFC 5246 7.4.8)."""
    out = hostile(tls_dut, pki, pki_dir, server_module, server={"ca": ("root",), "verify": 2},
                  good_cert="client_ec", cert="client_ec", tamper=two_byte_certificate_verify)
    assert out.message(tp.CERTIFICATE_REQUEST) is not None, f"no CertificateRequest: {out.describe()}"
    refused(out, tp.DECODE_ERROR)


# --- version tolerance: RFC 8446 4.1.2 / RFC 5246 E.1 -------------------------------------------------
@pytest.mark.parametrize("version", [(3, 4), (4, 1), (254, 254)], ids=["3.4", "4.1", "254.254"])
def test_higher_legacy_version_negotiates_tls12(tls_dut, pki, pki_dir, server_module, version):
    """A ClientHello whose legacy_version is above TLS 1.2 (a future version, no supported_versions)
    gets the server's highest version, TLS 1.2 (RFC 5246 E.1, RFC 8446 4.1.2 / D.1)."""

    def hello(ch):
        ch.client_version = version

    completed(hostile(tls_dut, pki, pki_dir, server_module, hello=hello, echo=ECHO))


def test_client_hello_record_version_3_254_accepted(tls_dut, pki, pki_dir, server_module):
    """RFC 5246 E.1: a server MUST accept any {03,XX} record-layer version on the ClientHello."""
    completed(hostile(tls_dut, pki, pki_dir, server_module, hello_record_version=0x03FE, echo=ECHO))


# --- a very large ClientHello ------------------------------------------------------------------------
def pad_hello(size: int):
    def hello(ch) -> None:
        set_ext(ch, tp.EXT_PADDING, b"")
        set_ext(ch, tp.EXT_PADDING, bytes(size - len(ch.write())))
        assert len(ch.write()) == size

    return hello


@pytest.mark.parametrize(("size", "record"), [(12_000, 4096), (16_600, 2**14)], ids=["12000-in-4k-records", "16600"])
def test_large_client_hello_completes(tls_dut, pki, pki_dir, server_module, size, record):
    """A ClientHello padded (RFC 7685) to `size` bytes, across several records: handshake and echo."""
    completed(hostile(tls_dut, pki, pki_dir, server_module, hello=pad_hello(size), hello_record_size=record,
                      echo=ECHO))


def test_very_large_client_hello_answered(tls_dut, pki, pki_dir, server_module):
    """A 32,000-byte ClientHello (two records): the board completes the handshake or refuses it with
    a fatal alert; a silent drop leaves the peer guessing (RFC 5246 7.2)."""
    out = hostile(tls_dut, pki, pki_dir, server_module, hello=pad_hello(32_000), echo=ECHO)
    if not out.completed:
        assert out.alert and out.alert[0] == tp.FATAL, f"neither a handshake nor a fatal alert: {out.describe()}"
        assert out.closed in ("eof", "reset"), f"after its alert the board left the connection open: {out.describe()}"


# --- negotiated extensions, CBC corruption -----------------------------------------------------------
CBC = "TLS-ECDHE-ECDSA-WITH-AES-128-CBC-SHA256"


def test_extended_master_secret_negotiated(tls_dut, pki, pki_dir, server_module):
    """RFC 7627: offered extended_master_secret is taken; encrypt_then_mac is not answered for an
    AEAD suite (RFC 7366 3)."""
    hello = completed(hostile(tls_dut, pki, pki_dir, server_module, echo=ECHO))
    assert tp.EXT_ENCRYPT_THEN_MAC not in hello.extensions, "encrypt_then_mac answered for an AEAD suite"
    assert tp.EXT_EXTENDED_MASTER_SECRET in hello.extensions, (
        f"no extended_master_secret in the ServerHello (extensions {sorted(hello.extensions)})")


def test_encrypt_then_mac_negotiated_for_cbc(tls_dut, pki, pki_dir, server_module):
    """RFC 7366: a CBC suite with encrypt_then_mac offered is run encrypt-then-MAC."""
    hello = completed(hostile(tls_dut, pki, pki_dir, server_module, server={"ciphers": [CBC]}, echo=ECHO))
    assert tp.EXT_ENCRYPT_THEN_MAC in hello.extensions, (
        f"no encrypt_then_mac in the ServerHello for {CBC} (extensions {sorted(hello.extensions)})")


@pytest.mark.parametrize("etm", [True, False], ids=["etm_offered", "mac_then_encrypt"])
def test_corrupted_cbc_record_gets_bad_record_mac_alert(tls_dut, pki, pki_dir, server_module, etm):
    """A CBC application_data record with its last byte flipped (MAC, or the padding under it):
    never delivered, and answered with a fatal bad_record_mac (RFC 5246 7.2.2; 6.2.3.2: padding
    errors too)."""
    with tp.BoardServer(tls_dut, "server_ec", conns=1, module=server_module, ciphers=[CBC]) as srv:
        out = tp.hostile_client(srv.connect(), pki, workdir=pki_dir, keep_open=True,
                                settings={"useEncryptThenMAC": etm})
        assert out.completed, out.describe()
        out.tamper.corrupt_next = True
        out.conn.write(b"secret")
        record = tp.tlslite_next_record(out.conn)
        out.tamper.sock.close()
    result = srv.results[0]
    assert (result.get("n"), result.get("data")) == (0, b""), f"corrupted data delivered: {result}"
    assert record == (tp.ALERT, bytes([tp.FATAL, tp.BAD_RECORD_MAC])), (
        f"bad_record_mac is due; the board sent {record!r} (None: closed) and ended {result.get('end')}")


# --- loose parsing: each a malformed or illegal ClientHello ----------------------------------------------
def no_null_compression(ch):
    ch.compression_methods = [1]


LOOSE = {
    # RFC 6066 3: ServerNameList server_name_list<1..2^16-1>
    "empty_sni_host_list": (lambda ch: set_ext(ch, tp.EXT_SERVER_NAME, b"\x00\x00"), tp.DECODE_ERROR),
    # RFC 8422 5.1.2: ECPointFormat ec_point_format_list<1..2^8-1>
    "empty_ec_point_formats": (point_formats([]), tp.DECODE_ERROR),
    # RFC 8422 5.1.2: a list without "uncompressed" MUST get illegal_parameter
    "ec_point_formats_without_uncompressed": (point_formats([2]), tp.ILLEGAL_PARAMETER),
    # RFC 5246 7.4.1.2: the list MUST contain null; tlsfuzzer expects illegal_parameter
    "deflate_only_compression": (no_null_compression, tp.ILLEGAL_PARAMETER),
}


@pytest.mark.parametrize("case", list(LOOSE))
def test_loose_client_hello_refused(tls_dut, pki, pki_dir, server_module, case):
    hello, due = LOOSE[case]
    refused(hostile(tls_dut, pki, pki_dir, server_module, hello=hello), due)


def test_renegotiation_info_not_empty_gets_handshake_failure(tls_dut, pki, pki_dir, server_module):
    """RFC 5746 3.6: renegotiation_info with content on an initial handshake: handshake_failure."""
    refused(hostile(tls_dut, pki, pki_dir, server_module,
                    hello=lambda ch: set_ext(ch, tp.EXT_RENEGOTIATION_INFO, b"\x01\x00")), tp.HANDSHAKE_FAILURE)


# --- capabilities: each case passes where the board has it ------------------------------------------
X25519 = 29
ECDHE_SUITES_ECDSA = {0xC02B, 0xC02C, 0xC023, 0xC024, 0xC009, 0xC00A}
RSA_PSS_RSAE = [0x0804, 0x0805, 0x0806]
ECDSA_SHA1 = 0x0203


def test_capability_rsa_pss_signatures_in_tls12(tls_dut, pki, pki_dir, server_module):
    """Only rsa_pss_rsae_* offered (RFC 8446 4.2.3 schemes, usable in TLS 1.2): ECDHE-RSA signed
    with RSA-PSS."""
    out = hostile(tls_dut, pki, pki_dir, server_module, board_cert="server_rsa",
                  hello=lambda ch: set_ext(ch, tp.EXT_SIGNATURE_ALGORITHMS, u16_list(RSA_PSS_RSAE)))
    assert out.key_exchange is not None and out.key_exchange[1] in RSA_PSS_RSAE, out.describe()
    completed(out)


def test_capability_x25519(tls_dut, pki, pki_dir, server_module):
    """Only x25519 in supported_groups (RFC 8422 5.1.1): ECDHE over X25519."""
    out = hostile(tls_dut, pki, pki_dir, server_module, settings={"eccCurves": ["x25519"], "keyShares": []}, echo=ECHO)
    assert out.key_exchange is not None and out.key_exchange[0] == X25519, out.describe()
    completed(out)


def test_capability_ecdhe_without_supported_groups(tls_dut, pki, pki_dir, server_module):
    """ECDHE suites offered without supported_groups: RFC 8422 4 lets the server pick any curve
    (ECDHE still negotiated)."""
    out = hostile(tls_dut, pki, pki_dir, server_module, hello=lambda ch: set_ext(ch, tp.EXT_SUPPORTED_GROUPS, None))
    hello = out.server_hello
    assert hello is not None and hello.cipher in ECDHE_SUITES_ECDSA and out.key_exchange, out.describe()


def test_capability_sha1_ecdsa_signatures_refused(tls_dut, pki, pki_dir, server_module):
    """Only ecdsa_sha1 offered: RFC 9155 retires SHA-1 signatures in TLS 1.2, so the board must
    not sign with it: handshake_failure (no common signature scheme)."""
    out = hostile(tls_dut, pki, pki_dir, server_module,
                  hello=lambda ch: set_ext(ch, tp.EXT_SIGNATURE_ALGORITHMS, u16_list([ECDSA_SHA1])))
    assert out.key_exchange is None or out.key_exchange[1] != ECDSA_SHA1, f"signed with ecdsa_sha1: {out.describe()}"
    refused(out, tp.HANDSHAKE_FAILURE)
