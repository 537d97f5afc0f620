"""Real sign-in servers for the tests: Debian's OpenLDAP `slapd` and the npm `oidc-provider`,
each started on a free 127.0.0.1 port with its own config and data in a temporary folder.

Neither the system slapd nor its config is touched: ours runs with `-f OUR_CONF -h URL`.
The OpenID provider's package is installed by `scripts/setup.sh --test` (npm ci in
tests/oidc_provider/, pinned by its package-lock.json); nothing is downloaded here.
"""

from __future__ import annotations

import datetime
import html
import ipaddress
import json
import os
import re
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

OIDC_DIR = Path(__file__).resolve().parent / "oidc_provider"
BASE = "dc=example,dc=com"
ROOT_DN = f"cn=admin,{BASE}"
ROOT_PASSWORD = "root-secret-for-tests"
SERVICE_DN = f"cn=kura-svc,ou=services,{BASE}"
SERVICE_PASSWORD = "service-secret-for-tests"
# name -> (password, employeeType); groups below. carol is marked as left the company.
PEOPLE = {
    "alice": ("Alice-ldap-password-1", "staff"),
    "bob": ("Bob-ldap-password-2", "staff"),
    "carol": ("Carol-ldap-password-3", "disabled"),
    "dave": ("Dave-ldap-password-4", "staff"),
    "eve": ("Eve-ldap-password-5", "staff"),
}
GROUPS = {
    "hr": ["alice", "bob"],
    "finance": ["alice"],
    "kura-admins": ["dave"],
    "staff": ["alice", "bob", "carol", "dave", "eve"],
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def need_program(path: str | None, name: str) -> str:
    """`path` (what shutil.which found), or skip / fail (in CI) saying how to install `name`."""
    if path is None:
        message = f"{name} is not installed; run scripts/setup.sh --test"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def person_dn(name: str) -> str:
    return f"uid={name},ou=people,{BASE}"


def group_dn(name: str) -> str:
    return f"cn={name},ou=groups,{BASE}"


def write_test_ca(folder: Path) -> tuple[Path, Path, Path]:
    """A throw-away CA and a server certificate for 127.0.0.1: (ca.pem, server.pem, server.key)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kura test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    ca_pem, cert_pem, key_pem = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    ca_pem.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return ca_pem, cert_pem, key_pem


class Slapd:
    """OpenLDAP on 127.0.0.1:PORT (plain LDAP with StartTLS, and LDAPS on PORT+), loaded with
    PEOPLE and GROUPS; `memberOf` is kept by the memberof overlay, as in Active Directory."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.slapd = need_program(shutil.which("slapd") or shutil.which("/usr/sbin/slapd"), "slapd")
        self.ldapadd = need_program(shutil.which("ldapadd"), "ldapadd")
        self.ldapmodify = need_program(shutil.which("ldapmodify"), "ldapmodify")
        self.port = free_port()
        self.ldaps_port = free_port()
        self.url = f"ldap://127.0.0.1:{self.port}"
        self.ldaps_url = f"ldaps://127.0.0.1:{self.ldaps_port}"
        self.ca_file, cert, key = write_test_ca(folder)
        (folder / "db").mkdir()
        self.conf = folder / "slapd.conf"
        self.conf.write_text(
            "\n".join(
                [
                    *(f"include /etc/ldap/schema/{s}.schema" for s in ("core", "cosine", "inetorgperson", "nis")),
                    "modulepath /usr/lib/ldap",
                    "moduleload back_mdb",
                    "moduleload memberof",
                    f"pidfile {folder}/slapd.pid",
                    f"TLSCACertificateFile {self.ca_file}",
                    f"TLSCertificateFile {cert}",
                    f"TLSCertificateKeyFile {key}",
                    "database mdb",
                    "maxsize 10485760",
                    f'suffix "{BASE}"',
                    f'rootdn "{ROOT_DN}"',
                    f"rootpw {ROOT_PASSWORD}",
                    f"directory {folder}/db",
                    "overlay memberof",
                    "memberof-refint TRUE",
                    "access to attrs=userPassword by anonymous auth by self write by * none",
                    "access to * by users read by * none",
                    "",
                ]
            )
        )
        self.log = (folder / "slapd.log").open("w")
        self.process = subprocess.Popen(
            [self.slapd, "-d", "0", "-f", str(self.conf), "-h", f"{self.url}/ {self.ldaps_url}/"],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self._wait()
        self.add(self._directory_ldif())

    def _wait(self) -> None:
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    log = (self.folder / "slapd.log").read_text()[-2000:]
                    raise RuntimeError(f"slapd did not start: {log}") from None
                time.sleep(0.1)

    def _tool(self, program: str, ldif: str, *extra: str) -> None:
        done = subprocess.run(
            [program, "-x", "-H", self.url, "-D", ROOT_DN, "-w", ROOT_PASSWORD, *extra],
            input=ldif,
            text=True,
            capture_output=True,
            timeout=30,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{program} failed: {done.stderr}\n{ldif}")

    def add(self, ldif: str) -> None:
        self._tool(self.ldapadd, ldif)

    def modify(self, ldif: str) -> None:
        self._tool(self.ldapmodify, ldif)

    def move_member(self, name: str, from_group: str | None, to_group: str | None) -> None:
        """Take `name` out of one group and/or into another, as a directory admin would."""
        parts = []
        if from_group:
            parts.append(f"dn: {group_dn(from_group)}\nchangetype: modify\ndelete: member\nmember: {person_dn(name)}\n")
        if to_group:
            parts.append(f"dn: {group_dn(to_group)}\nchangetype: modify\nadd: member\nmember: {person_dn(name)}\n")
        self.modify("\n".join(parts))

    @staticmethod
    def _directory_ldif() -> str:
        entries = [
            f"dn: {BASE}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example\n",
            f"dn: ou=people,{BASE}\nobjectClass: organizationalUnit\nou: people\n",
            f"dn: ou=groups,{BASE}\nobjectClass: organizationalUnit\nou: groups\n",
            f"dn: ou=services,{BASE}\nobjectClass: organizationalUnit\nou: services\n",
            f"dn: {SERVICE_DN}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\n"
            f"cn: kura-svc\nuserPassword: {SERVICE_PASSWORD}\n",
        ]
        for name, (password, kind) in PEOPLE.items():
            entries.append(
                f"dn: {person_dn(name)}\nobjectClass: inetOrgPerson\nuid: {name}\ncn: {name.title()}\n"
                f"sn: {name.title()}\nmail: {name}@example.com\nemployeeType: {kind}\nuserPassword: {password}\n"
            )
        for group, members in GROUPS.items():
            lines = "".join(f"member: {person_dn(m)}\n" for m in members)
            entries.append(f"dn: {group_dn(group)}\nobjectClass: groupOfNames\ncn: {group}\n{lines}")
        return "\n".join(entries)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.log.close()


class OidcProvider:
    """panva/oidc-provider (certified OpenID provider) on http://127.0.0.1:PORT, with the
    clients and accounts given. Accounts sign in through the provider's own login form."""

    def __init__(self, folder: Path, clients: list[dict], accounts: dict[str, dict], port: int | None = None) -> None:
        node = need_program(shutil.which("node"), "node")
        if not (OIDC_DIR / "node_modules" / "oidc-provider").is_dir():
            message = f"{OIDC_DIR}/node_modules is missing; run scripts/setup.sh --test (npm ci there)"
            if os.environ.get("CI"):
                pytest.fail(message)
            pytest.skip(message)
        self.port = port or free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        config = folder / "oidc-config.json"
        config.write_text(
            json.dumps({"issuer": self.issuer, "port": self.port, "clients": clients, "accounts": accounts})
        )
        self.log_path = folder / "oidc-provider.log"
        self.log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [node, str(OIDC_DIR / "provider.mjs"), str(config)],
            cwd=OIDC_DIR,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{self.issuer}/.well-known/openid-configuration", timeout=2):
                    break
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("oidc-provider did not start: " + self.log_path.read_text()[-2000:]) from None
                time.sleep(0.2)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.log.close()


def sign_in_at_provider(
    authorize_url: str, login: str, redirect_prefix: str = "http://127.0.0.1:8501/"
) -> dict[str, str]:
    """What a person does in the browser: the provider's login form, then its consent page.
    Returns the query parameters the provider sends back to kura's callback (under
    `redirect_prefix`), without calling it."""
    browser = requests.Session()
    url, method, data = authorize_url, "GET", None
    for _ in range(12):
        response = browser.request(method, url, data=data, allow_redirects=False, timeout=10)
        if response.is_redirect:
            url = urljoin(url, response.headers["location"])
            if url.startswith(redirect_prefix):
                return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
            method, data = "GET", None
            continue
        assert response.status_code == 200, response.text[:500]
        action = html.unescape(re.search(r'<form[^>]*action="([^"]+)"', response.text).group(1))
        prompt = re.search(r'name="prompt" value="(\w+)"', response.text).group(1)
        url, method = urljoin(url, action), "POST"
        data = {"prompt": prompt, "login": login, "password": "any"} if prompt == "login" else {"prompt": prompt}
    raise AssertionError("the provider never redirected back to kura")
