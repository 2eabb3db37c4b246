#!/usr/bin/python3
"""Writes a self-signed ECDSA P-256 certificate and its key for the TLS tests.

usage: make_cert.py CERT KEY CN [NOT_BEFORE_DAYS] [NOT_AFTER_DAYS]
Days are counted from now (negative: in the past), default -1 and 30, so
"-10 -1" makes a certificate that expired yesterday. Debian's python3-
cryptography (ops/install-deps); run with /usr/bin/python3.
"""
import datetime
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

cert_path, key_path, cn = sys.argv[1:4]
before = int(sys.argv[4]) if len(sys.argv) > 4 else -1
after = int(sys.argv[5]) if len(sys.argv) > 5 else 30
key = ec.generate_private_key(ec.SECP256R1())
name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
now = datetime.datetime.now(datetime.timezone.utc)
cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + datetime.timedelta(days=before))
        .not_valid_after(now + datetime.timedelta(days=after))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                    x509.IPAddress(__import__("ipaddress").ip_address("127.0.0.1"))]),
                       critical=False)
        .sign(key, hashes.SHA256()))
with open(cert_path, "wb") as f:
    f.write(cert.public_bytes(serialization.Encoding.PEM))
with open(key_path, "wb") as f:
    f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()))
