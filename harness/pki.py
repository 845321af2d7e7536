"""A test PKI made per run: CAs, server and client certificates, good and deliberately bad.

    pki = TestPKI()                       # keys and certificates made now, valid relative to now
    pki["server_rsa"].cert_der            # DER for MicroPython's tls module (it rejects PEM)
    pki["server_rsa"].files(tmp)          # (chain.pem, key.pem) for CPython's ssl.load_cert_chain
    pki.trust_pem                         # root CA PEM for CPython's ssl.load_verify_locations

Layout (every leaf names HOSTNAME in its CN and subjectAltName unless said otherwise):

    root (RSA 2048, CA)                   the trust anchor boards and host peers load
    └── intermediate (EC P-256, CA, pathlen 0)
        ├── server_rsa, server_ec         good server certificates (RSA 2048 / EC P-256 keys)
        ├── client_rsa, client_ec         good client certificates (CN "hil-client-rsa"/"-ec")
        ├── expired                       validity ended a day ago
        ├── not_yet_valid                 validity starts in a day
        └── wrong_host                    names WRONG_HOSTNAME instead
    rogue_root (RSA 2048, CA, not trusted by anyone)
    ├── rogue_server                      right name, untrusted issuer (a bad chain)
    └── rogue_client                      a client certificate from an untrusted issuer
    self_signed                           its own issuer, right name

Servers send their chain (leaf + intermediate); ``chain_der`` is that chain as concatenated DER.
Validity is relative to ``now`` (default: the real time), with a day's margin either side of the
good certificates' lives so a board clock that is minutes off does not matter but one that is
days off is caught (suites check the board clock against the real time first)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

HOSTNAME = "hil-tls.test"
WRONG_HOSTNAME = "not-the-board.test"
DAY = dt.timedelta(days=1)

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def _rsa() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _ec() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "hil test PKI"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


@dataclass
class Credential:
    """A certificate, its private key and the intermediates a peer presenting it sends."""

    name: str
    cert: x509.Certificate
    key: PrivateKey
    chain: list[x509.Certificate] = field(default_factory=list)  # issuers to send, leaf excluded

    @property
    def cert_der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)

    @property
    def chain_der(self) -> bytes:
        """Leaf then intermediates, concatenated DER."""
        return b"".join(c.public_bytes(serialization.Encoding.DER) for c in [self.cert, *self.chain])

    @property
    def key_der(self) -> bytes:
        """PKCS#8, unencrypted: mbedTLS parses it for RSA and EC keys alike."""
        return self.key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def chain_pem(self) -> bytes:
        return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in [self.cert, *self.chain])

    @property
    def key_pem(self) -> bytes:
        return self.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())

    @property
    def sha256(self) -> str:
        """Fingerprint of the leaf's DER (what a board's verify callback sees)."""
        return hashlib.sha256(self.cert_der).hexdigest()

    @property
    def common_name(self) -> str:
        return self.cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value

    def files(self, directory: Path, chain: bool = True) -> tuple[Path, Path]:
        """(certificate PEM, key PEM) written under directory: what CPython's load_cert_chain wants.
        The certificate file holds the chain (leaf + intermediates) unless chain is False."""
        directory.mkdir(parents=True, exist_ok=True)
        cert = directory / (f"{self.name}.chain.pem" if chain else f"{self.name}.pem")
        key = directory / f"{self.name}.key.pem"
        if not cert.exists():
            cert.write_bytes(self.chain_pem if chain else self.cert_pem)
        if not key.exists():
            key.write_bytes(self.key_pem)
            key.chmod(0o600)
        return cert, key


class TestPKI:
    """Every credential of the layout above, made at construction (about a second: RSA keys)."""

    __test__ = False  # not a pytest test class despite the name

    def __init__(self, now: dt.datetime | None = None, hostname: str = HOSTNAME,
                 wrong_hostname: str = WRONG_HOSTNAME) -> None:
        self.now = (now or dt.datetime.now(dt.UTC)).replace(microsecond=0)
        self.hostname, self.wrong_hostname = hostname, wrong_hostname
        self.not_before = self.now - DAY
        self.not_after = self.now + 30 * DAY
        self.root = self._ca("hil test root CA", _rsa(), None)
        self.intermediate = self._ca("hil test intermediate CA", _ec(), self.root, path_length=0)
        self.rogue_root = self._ca("hil rogue root CA", _rsa(), None)
        self.creds: dict[str, Credential] = {}
        inter, rogue = self.intermediate, self.rogue_root
        self._leaf("server_rsa", _rsa(), inter, server=True)
        self._leaf("server_ec", _ec(), inter, server=True)
        self._leaf("client_rsa", _rsa(), inter, server=False, cn="hil-client-rsa")
        self._leaf("client_ec", _ec(), inter, server=False, cn="hil-client-ec")
        self._leaf("expired", _ec(), inter, server=True, window=(self.now - 30 * DAY, self.now - DAY))
        self._leaf("not_yet_valid", _ec(), inter, server=True, window=(self.now + DAY, self.now + 30 * DAY))
        self._leaf("wrong_host", _ec(), inter, server=True, cn=wrong_hostname)
        self._leaf("rogue_server", _ec(), rogue, server=True)
        self._leaf("rogue_client", _ec(), rogue, server=False, cn="hil-rogue-client")
        self._leaf("self_signed", _ec(), None, server=True)

    # --- access ---------------------------------------------------------------------------------
    def __getitem__(self, name: str) -> Credential:
        return self.creds[name]

    def __iter__(self):
        return iter(self.creds.values())

    @property
    def trust_pem(self) -> bytes:
        """The root alone: peers must build the chain from what the other side sends."""
        return self.root.cert_pem

    @property
    def trust_der(self) -> bytes:
        return self.root.cert_der

    @property
    def trust_with_intermediate_pem(self) -> bytes:
        """Root and intermediate: for peers of a board server, which can send only its leaf
        (MicroPython's load_cert_chain takes one DER certificate)."""
        return self.root.cert_pem + self.intermediate.cert_pem

    def board_files(self) -> dict[str, bytes]:
        """What a board needs, by file name: CA certificates, then each credential's leaf DER,
        chain DER (leaf + intermediates) and PKCS#8 key DER."""
        files = {"root.der": self.root.cert_der, "intermediate.der": self.intermediate.cert_der,
                 "rogue_root.der": self.rogue_root.cert_der}
        for cred in self:
            files[f"{cred.name}.der"] = cred.cert_der
            files[f"{cred.name}.chain.der"] = cred.chain_der
            files[f"{cred.name}.key"] = cred.key_der
        return files

    def deliver(self, board) -> int:
        """Write the board files into ``board``'s hil_pki/ over its REPL (firmware_py/hil_tls.py
        keeps them in RAM on boards without a file system), unless this PKI is there already: a
        marker file holds the root's fingerprint. ``board``: anything with exec() and eval(), a
        harness Board. Returns the number of files written."""
        marker = self.root.sha256.encode()
        if board.eval(f"__import__('hil_tls').has('id', {marker!r})"):
            return 0
        files = self.board_files()
        batch: list[str] = []
        size = 0
        for name, data in [*files.items(), ("id", marker)]:  # the marker last: a cut delivery is redone
            batch.append(f"hil_tls.store({name!r}, {base64.b64encode(data)!r})")
            size += len(data)
            if size > 3000 or name == "id":  # a few KB per exec: the smallest boards' REPL buffers
                board.exec("import hil_tls\n" + "\n".join(batch))
                batch, size = [], 0
        return len(files)

    # --- making ---------------------------------------------------------------------------------
    def _builder(self, subject: x509.Name, issuer: Credential | None, key: PrivateKey,
                 window: tuple[dt.datetime, dt.datetime] | None) -> x509.CertificateBuilder:
        start, end = window or (self.not_before, self.not_after)
        issuer_name = issuer.cert.subject if issuer else subject
        return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer_name)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(start).not_valid_after(end)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))

    def _sign(self, builder: x509.CertificateBuilder, issuer: Credential | None, key: PrivateKey,
              ) -> x509.Certificate:
        signer = issuer.key if issuer else key
        if issuer:
            ski = issuer.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
            builder = builder.add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski),
                                            critical=False)
        return builder.sign(signer, hashes.SHA256())

    def _ca(self, cn: str, key: PrivateKey, issuer: Credential | None, path_length: int | None = None) -> Credential:
        builder = self._builder(_name(cn), issuer, key, (self.now - 2 * DAY, self.now + 60 * DAY))
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        builder = builder.add_extension(
            x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                          data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                          encipher_only=False, decipher_only=False), critical=True)
        return Credential(cn, self._sign(builder, issuer, key), key)

    def _leaf(self, name: str, key: PrivateKey, issuer: Credential | None, *, server: bool, cn: str | None = None,
              window: tuple[dt.datetime, dt.datetime] | None = None) -> Credential:
        cn = cn or self.hostname
        builder = self._builder(_name(cn), issuer, key, window)
        builder = builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        if server:
            names: list[x509.GeneralName] = [x509.DNSName(cn)]
            if cn == self.hostname:
                names.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        # intermediates the holder sends: everything between the leaf and the root
        chain = [] if issuer is None or issuer is self.root or issuer is self.rogue_root else [issuer.cert]
        cred = Credential(name, self._sign(builder, issuer, key), key, chain)
        self.creds[name] = cred
        return cred
