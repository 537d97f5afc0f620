"""OpenID Connect sign-in against a real provider (panva/oidc-provider on Node.js, started on
127.0.0.1 by the test): the authorization-code flow with PKCE through the provider's own login
and consent pages, then every check a relying party owes: state, nonce, issuer, audience,
expiry and the ID token's signature. Each refusal says what was wrong."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from app.audit.log import AuditLog
from app.identity.accounts import AccountConflict, Accounts
from app.identity.group_map import GroupMap
from app.identity.oidc import OidcClient, OidcError
from tests.sso_servers import OidcProvider, free_port, sign_in_at_provider

REDIRECT = "http://127.0.0.1:8501/auth/oidc/callback"
CLIENTS = [
    {"client_id": "kura", "token_endpoint_auth_method": "none", "redirect_uris": [REDIRECT]},
    {
        "client_id": "kura-confidential",
        "client_secret": "confidential-client-secret-for-tests",
        "redirect_uris": [REDIRECT],
    },
    {"client_id": "other-app", "token_endpoint_auth_method": "none", "redirect_uris": [REDIRECT]},
    {"client_id": "short-lived", "token_endpoint_auth_method": "none", "redirect_uris": [REDIRECT], "id_token_ttl": 1},
]
ACCOUNTS = {
    "alice": {"email": "alice@example.com", "groups": ["HR", "finance-team", "staff"]},
    "dave": {"email": "dave@example.com", "groups": ["staff"], "roles": ["kura-admins"]},
}
MAPPING = GroupMap({"HR": "hr", "finance-team": "finance"}, {"staff": "employee", "kura-admins": "admin"}, frozenset())


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OidcProvider]:
    server = OidcProvider(tmp_path_factory.mktemp("oidc"), CLIENTS, ACCOUNTS)
    yield server
    server.stop()


def client_for(provider: OidcProvider, client_id: str = "kura", **options) -> OidcClient:  # noqa: ANN003
    secret = next((c.get("client_secret") for c in CLIENTS if c["client_id"] == client_id), None)
    return OidcClient(provider.issuer, client_id, secret, roles_claim="roles", **options)


def signed_in_tokens(client: OidcClient, login: str = "alice"):  # noqa: ANN201
    return client.exchange(sign_in_at_provider(client.begin(REDIRECT), login))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def test_sign_in_with_pkce_maps_the_providers_groups_and_roles(provider: OidcProvider, tmp_path: Path) -> None:
    client = client_for(provider)
    url = client.begin(REDIRECT)
    query = parse_qs(urlsplit(url).query)
    assert query["code_challenge_method"] == ["S256"] and len(query["code_challenge"][0]) == 43
    assert query["nonce"][0] and query["state"][0]
    identity = client.finish(sign_in_at_provider(url, "alice"))
    assert identity.name == "alice" and identity.subject == "alice"
    assert set(identity.groups) == {"HR", "finance-team", "staff"}

    accounts = Accounts(tmp_path / "users.sqlite3", audit=AuditLog(tmp_path / "audit.jsonl"), group_map=MAPPING)
    user = accounts.apply_identity(identity.name, "oidc", identity.external_id, identity.groups, by="identity-provider")
    assert user.roles == {"employee"} and user.groups == ("finance", "hr")
    info = accounts.info("alice")
    assert info.source == "oidc" and info.synced_groups == ("finance", "hr") and info.last_synced
    dave = client.finish(sign_in_at_provider(client.begin(REDIRECT), "dave"))
    assert accounts.apply_identity(dave.name, "oidc", dave.external_id, dave.groups, by="identity-provider").roles == {
        "admin",
        "employee",
    }


def test_a_confidential_client_signs_in_with_its_secret(provider: OidcProvider) -> None:
    client = client_for(provider, "kura-confidential")
    assert client.finish(sign_in_at_provider(client.begin(REDIRECT), "alice")).name == "alice"


def test_a_replayed_or_forged_state_is_refused(provider: OidcProvider) -> None:
    client = client_for(provider)
    answer = sign_in_at_provider(client.begin(REDIRECT), "alice")
    assert client.finish(answer).name == "alice"
    with pytest.raises(OidcError, match="already used"):
        client.finish(answer)  # the same callback a second time
    forged = sign_in_at_provider(client.begin(REDIRECT), "alice") | {"state": "attacker-chosen"}
    with pytest.raises(OidcError, match="state does not match"):
        client.finish(forged)


def test_a_tampered_id_token_is_refused(provider: OidcProvider) -> None:
    client = client_for(provider)
    tokens = signed_in_tokens(client)
    assert client.verify_id_token(tokens.id_token, tokens.nonce)["sub"] == "alice"  # untouched: accepted
    header, payload, signature = tokens.id_token.split(".")
    claims = _claims(tokens.id_token) | {"roles": ["kura-admins"], "groups": ["HR", "executives"]}
    tampered = ".".join([header, _b64(json.dumps(claims).encode()), signature])
    with pytest.raises(OidcError, match="signature does not verify"):
        client.verify_id_token(tampered, tokens.nonce)
    unsigned = ".".join([_b64(b'{"alg":"none","typ":"JWT"}'), _b64(json.dumps(claims).encode()), ""])
    with pytest.raises(OidcError, match="cannot be read or verified|signature"):
        client.verify_id_token(unsigned, tokens.nonce)


def test_an_id_token_for_another_application_is_refused(provider: OidcProvider) -> None:
    other = client_for(provider, "other-app")
    tokens = signed_in_tokens(other)
    assert _claims(tokens.id_token)["aud"] == "other-app"
    with pytest.raises(OidcError, match="another application"):
        client_for(provider).verify_id_token(tokens.id_token, tokens.nonce)


def test_an_expired_id_token_is_refused(provider: OidcProvider) -> None:
    client = client_for(provider, "short-lived", clock_skew_s=0)
    tokens = signed_in_tokens(client)  # the provider gives this client one-second ID tokens
    time.sleep(max(0.0, _claims(tokens.id_token)["exp"] - time.time()) + 1.1)
    with pytest.raises(OidcError, match="expired at"):
        client.verify_id_token(tokens.id_token, tokens.nonce)


def test_a_wrong_nonce_or_issuer_is_refused(provider: OidcProvider) -> None:
    client = client_for(provider)
    tokens = signed_in_tokens(client)
    with pytest.raises(OidcError, match="nonce does not match"):
        client.verify_id_token(tokens.id_token, "a-nonce-from-another-sign-in")
    with pytest.raises(OidcError, match="exactly the provider's issuer"):
        OidcClient(provider.issuer + "/", "kura").begin(REDIRECT)


def test_an_oidc_identity_cannot_take_over_a_local_account(provider: OidcProvider, tmp_path: Path) -> None:
    accounts = Accounts(tmp_path / "users.sqlite3", group_map=MAPPING)
    accounts.add("alice", "Copper-kettle-local-7", ["admin", "employee"])
    client = client_for(provider)
    identity = client.finish(sign_in_at_provider(client.begin(REDIRECT), "alice"))
    with pytest.raises(AccountConflict, match="another kura account"):
        accounts.apply_identity(identity.name, "oidc", identity.external_id, identity.groups, by="identity-provider")
    assert accounts.info("alice").source == "local"


def test_doctor_checks_the_provider(provider: OidcProvider, tmp_path: Path) -> None:
    from app.doors.cli.models import run_checks
    from app.platform.settings import KuraSettings

    def check(issuer: str):  # noqa: ANN202
        settings = KuraSettings(data_dir=tmp_path, oidc_issuer=issuer, oidc_client_id="kura")
        return next(c for c in run_checks(settings) if c.what == "OpenID provider")

    ok = check(provider.issuer)
    assert ok.status == "OK" and "signing key" in ok.detail
    down = check(f"http://127.0.0.1:{free_port()}")
    assert down.status == "FAIL" and "cannot be read" in down.detail


def test_another_subject_with_the_same_user_name_is_refused(provider: OidcProvider, tmp_path: Path) -> None:
    accounts = Accounts(tmp_path / "users.sqlite3", group_map=MAPPING)
    client = client_for(provider)
    alice = client.finish(sign_in_at_provider(client.begin(REDIRECT), "alice"))
    accounts.sign_in_identity(alice.name, "oidc", alice.external_id, alice.groups)
    # Someone whose provider account also says preferred_username=alice, but another subject.
    with pytest.raises(AccountConflict, match="another kura account"):
        accounts.sign_in_identity("alice", "oidc", f"{provider.issuer}|someone-else", alice.groups)
    assert accounts.sign_in_identity(alice.name, "oidc", alice.external_id, alice.groups).name == "alice"
