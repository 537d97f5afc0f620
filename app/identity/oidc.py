"""OpenID Connect sign-in (authorization-code flow with PKCE) against the company's identity
provider: Entra ID, Okta, Keycloak, HENNGE ... inside the company network.

kura checks what a relying party must: the `state` (one use, ten minutes), the `nonce`, the
issuer, the audience, the expiry, and the ID token's signature against the provider's
published keys (JWKS from its discovery document). Every refusal is an OidcError whose
message says what was wrong and that signing in again is the fix.

Usage (the /auth/oidc routes call exactly this):
    client = OidcClient.from_settings(settings)                    # None when not configured
    url = client.begin("https://kura.example.com/auth/oidc/callback")  # redirect the browser there
    identity = client.finish(dict(request.query_params))           # on the callback
    user = accounts.apply_identity(identity.name, "oidc", identity.external_id, identity.groups, ...)
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.requests_client import OAuth2Session
from joserfc import jwt
from joserfc.errors import BadSignatureError, InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet

# Asymmetric signatures only: never "none", never an HMAC keyed with something public.
SIGNING_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
PENDING_SECONDS = 600  # a sign-in must come back from the provider within ten minutes
_AGAIN = "sign in again"


class OidcError(Exception):
    """The provider's answer cannot be trusted or used; the message says why and what to do."""


@dataclass(frozen=True)
class OidcIdentity:
    name: str  # the kura user name (from the username claim, lower-case)
    issuer: str
    subject: str
    groups: tuple[str, ...]  # the groups claim and the roles claim, for app/identity/group_map.py
    claims: Mapping[str, Any] = field(repr=False)

    @property
    def external_id(self) -> str:
        """Stable across renames of the person: the provider's (issuer, subject)."""
        return f"{self.issuer}|{self.subject}"


@dataclass(frozen=True)
class TokenSet:
    id_token: str
    access_token: str | None
    nonce: str  # the nonce this sign-in sent, which the ID token must carry


@dataclass(frozen=True)
class _Pending:
    nonce: str
    code_verifier: str
    redirect_uri: str
    started: float


class OidcClient:
    """One configured identity provider. Thread-safe; keeps the sign-ins under way in memory
    (a server restart only means those people press the button again)."""

    def __init__(
        self,
        issuer: str,
        client_id: str,
        client_secret: str | None = None,
        *,
        name: str = "OpenID Connect",
        scopes: str = "openid profile email groups",
        username_claim: str = "preferred_username",
        groups_claim: str = "groups",
        roles_claim: str | None = None,
        ca_file: Path | None = None,
        clock_skew_s: int = 60,
        timeout_s: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not issuer.startswith(("https://", "http://")):
            raise ValueError(f"KURA_OIDC_ISSUER={issuer!r} must be the provider's https:// URL")
        if not client_id:
            raise ValueError("KURA_OIDC_CLIENT_ID is not set: register kura at the provider and set its client id")
        if "openid" not in scopes.split():
            raise ValueError(f"KURA_OIDC_SCOPES={scopes!r} must include 'openid'")
        if ca_file is not None and not Path(ca_file).is_file():
            raise ValueError(f"KURA_OIDC_CA_FILE={str(ca_file)!r} does not exist; point it to the CA's PEM file")
        self.issuer = issuer
        self.client_id = client_id
        self.client_secret = client_secret
        self.name = name
        self.scopes = scopes
        self.username_claim = username_claim
        self.groups_claim = groups_claim
        self.roles_claim = roles_claim
        self.ca_file = ca_file
        self.clock_skew_s = clock_skew_s
        self.timeout_s = timeout_s
        self._clock = clock
        self._lock = threading.Lock()
        self._pending: dict[str, _Pending] = {}
        self._metadata: dict[str, Any] | None = None
        self._keys: KeySet | None = None

    @classmethod
    def from_settings(cls, settings) -> OidcClient | None:  # noqa: ANN001  (KuraSettings)
        if not settings.oidc_issuer:
            return None
        return cls(
            settings.oidc_issuer,
            settings.oidc_client_id or "",
            settings.oidc_client_secret,
            name=settings.oidc_name,
            scopes=settings.oidc_scopes,
            username_claim=settings.oidc_username_claim,
            groups_claim=settings.oidc_groups_claim,
            roles_claim=settings.oidc_roles_claim,
            ca_file=settings.oidc_ca_file,
            clock_skew_s=settings.oidc_clock_skew_s,
            timeout_s=settings.oidc_timeout_s,
        )

    # --- the provider's published configuration --------------------------------------------
    def _session(self, **kwargs: Any) -> OAuth2Session:
        session = OAuth2Session(
            self.client_id,
            self.client_secret,
            token_endpoint_auth_method="client_secret_basic" if self.client_secret else "none",
            code_challenge_method="S256",
            scope=self.scopes,
            **kwargs,
        )
        session.verify = str(self.ca_file) if self.ca_file else True
        session.trust_env = False  # the provider is inside the network: no proxy from the environment
        return session

    def _get_json(self, url: str, what: str) -> dict[str, Any]:
        try:
            with self._session() as session:
                response = session.get(url, timeout=self.timeout_s, withhold_token=True)
                response.raise_for_status()
                data = response.json()
        except requests.exceptions.SSLError as exc:
            raise OidcError(
                f"the provider's certificate at {url} is not trusted ({exc}); set KURA_OIDC_CA_FILE "
                "to the CA that signed it"
            ) from exc
        except (requests.RequestException, ValueError, AuthlibBaseError) as exc:
            raise OidcError(f"the provider's {what} at {url} cannot be read ({exc}); check KURA_OIDC_ISSUER") from exc
        if not isinstance(data, dict):
            raise OidcError(f"the provider's {what} at {url} is not a JSON object; check KURA_OIDC_ISSUER")
        return data

    def metadata(self) -> dict[str, Any]:
        """The discovery document, read once; its issuer must be exactly the configured one."""
        if self._metadata is None:
            url = self.issuer.rstrip("/") + "/.well-known/openid-configuration"
            data = self._get_json(url, "discovery document")
            if data.get("issuer") != self.issuer:
                raise OidcError(
                    f"the discovery document at {url} names the issuer {data.get('issuer')!r}, not "
                    f"{self.issuer!r}; set KURA_OIDC_ISSUER to exactly the provider's issuer"
                )
            missing = [k for k in ("authorization_endpoint", "token_endpoint", "jwks_uri") if not data.get(k)]
            if missing:
                raise OidcError(f"the discovery document at {url} lacks {', '.join(missing)}")
            self._metadata = data
        return self._metadata

    def _key_set(self, refresh: bool = False) -> KeySet:
        if self._keys is None or refresh:
            jwks = self._get_json(self.metadata()["jwks_uri"], "signing keys (JWKS)")
            try:
                self._keys = KeySet.import_key_set(jwks)  # type: ignore[arg-type]
            except (JoseError, ValueError, KeyError, TypeError) as exc:
                raise OidcError(f"the provider's signing keys cannot be read: {exc}") from exc
        return self._keys

    def check(self) -> str:
        """What `kura doctor` prints: discovery and signing keys can be read."""
        metadata = self.metadata()
        keys = self._key_set(refresh=True)
        return (
            f"{self.issuer}: discovery and {len(keys.keys)} signing key(s) read; "
            f"token endpoint {metadata['token_endpoint']}"
        )

    # --- the flow --------------------------------------------------------------------------
    def begin(self, redirect_uri: str) -> str:
        """The provider URL to send the browser to. Remembers state, nonce and PKCE verifier."""
        state = secrets.token_urlsafe(32)
        nonce = secrets.token_urlsafe(32)
        verifier = secrets.token_urlsafe(64)  # 86 characters: RFC 7636 wants 43-128
        with self._session(redirect_uri=redirect_uri) as session:
            url, _ = session.create_authorization_url(
                self.metadata()["authorization_endpoint"], state=state, nonce=nonce, code_verifier=verifier
            )
        now = self._clock()
        with self._lock:
            for old in [s for s, p in self._pending.items() if now - p.started > PENDING_SECONDS]:
                del self._pending[old]
            self._pending[state] = _Pending(nonce, verifier, redirect_uri, now)
        return url

    def exchange(self, params: Mapping[str, str]) -> TokenSet:
        """Check the callback's state (used up here: a replay finds nothing) and trade the code,
        with the PKCE verifier, for tokens at the provider's token endpoint."""
        if params.get("error"):
            raise OidcError(
                f"the provider refused the sign-in: {params.get('error')} "
                f"{params.get('error_description', '')}".strip() + f"; {_AGAIN}"
            )
        with self._lock:
            pending = self._pending.pop(str(params.get("state", "")), None)
        if pending is None:
            raise OidcError(
                f"this sign-in answer is unknown or was already used (state does not match a sign-in "
                f"under way: a replayed or forged callback); {_AGAIN}"
            )
        if self._clock() - pending.started > PENDING_SECONDS:
            raise OidcError(f"this sign-in took longer than {PENDING_SECONDS // 60} minutes; {_AGAIN}")
        if params.get("iss") is not None and params.get("iss") != self.issuer:
            raise OidcError(f"this answer comes from {params.get('iss')!r}, not from {self.issuer!r}; {_AGAIN}")
        code = params.get("code")
        if not code:
            raise OidcError(f"the provider's answer carries no authorization code; {_AGAIN}")
        try:
            with self._session(redirect_uri=pending.redirect_uri) as session:
                tokens = session.fetch_token(
                    self.metadata()["token_endpoint"],
                    code=code,
                    code_verifier=pending.code_verifier,
                    redirect_uri=pending.redirect_uri,
                    timeout=self.timeout_s,
                )
        except AuthlibBaseError as exc:
            raise OidcError(f"the provider did not accept the authorization code ({exc}); {_AGAIN}") from exc
        except requests.RequestException as exc:
            raise OidcError(f"the provider's token endpoint cannot be reached ({exc}); {_AGAIN} later") from exc
        if not tokens.get("id_token"):
            raise OidcError("the provider returned no ID token: the 'openid' scope must be allowed for kura's client")
        return TokenSet(str(tokens["id_token"]), tokens.get("access_token"), pending.nonce)

    def verify_id_token(self, id_token: str, nonce: str) -> dict[str, Any]:
        """The ID token's claims, after checking signature, issuer, audience, expiry and nonce."""
        try:
            try:
                token = jwt.decode(id_token, self._key_set(), algorithms=list(SIGNING_ALGORITHMS))
            except InvalidKeyIdError:  # the provider may have rotated its keys: read them again once
                token = jwt.decode(id_token, self._key_set(refresh=True), algorithms=list(SIGNING_ALGORITHMS))
        except BadSignatureError as exc:
            raise OidcError(
                f"the ID token's signature does not verify: it was altered, or not signed by {self.issuer}; {_AGAIN}"
            ) from exc
        except InvalidKeyIdError as exc:
            raise OidcError(f"the ID token is signed with a key {self.issuer} does not publish; {_AGAIN}") from exc
        except (JoseError, ValueError) as exc:
            raise OidcError(f"the ID token cannot be read or verified ({exc}); {_AGAIN}") from exc
        claims = dict(token.claims)
        if claims.get("iss") != self.issuer:
            raise OidcError(f"the ID token was issued by {claims.get('iss')!r}, not by {self.issuer!r}; {_AGAIN}")
        audience = claims.get("aud")
        audiences = [audience] if isinstance(audience, str) else list(audience or [])
        if self.client_id not in audiences:
            raise OidcError(
                f"the ID token was issued for another application (audience {audiences}), not for kura's "
                f"client {self.client_id!r}; {_AGAIN}"
            )
        if len(audiences) > 1 and claims.get("azp", self.client_id) != self.client_id:
            raise OidcError(f"the ID token was requested by another application (azp {claims.get('azp')!r}); {_AGAIN}")
        now = self._clock()
        expires = claims.get("exp")
        if not isinstance(expires, int | float):
            raise OidcError(f"the ID token has no expiry time; {_AGAIN}")
        if now > expires + self.clock_skew_s:
            raise OidcError(
                f"the ID token expired at {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(expires))}; {_AGAIN}"
            )
        issued = claims.get("iat")
        if not isinstance(issued, int | float) or issued > now + self.clock_skew_s:
            raise OidcError(
                "the ID token's issue time is missing or in the future: check the clocks of kura and "
                f"the provider; {_AGAIN}"
            )
        if not nonce or claims.get("nonce") != nonce:
            raise OidcError(
                f"the ID token's nonce does not match this sign-in (a replayed or injected token); {_AGAIN}"
            )
        if not claims.get("sub"):
            raise OidcError(f"the ID token names no subject; {_AGAIN}")
        return claims

    def finish(self, params: Mapping[str, str]) -> OidcIdentity:
        """The signed-in person from the provider's callback parameters, or OidcError."""
        tokens = self.exchange(params)
        claims = self.verify_id_token(tokens.id_token, tokens.nonce)
        userinfo_url = self.metadata().get("userinfo_endpoint")
        if self.groups_claim not in claims and tokens.access_token and userinfo_url:
            claims = {**self._userinfo(userinfo_url, tokens.access_token, claims["sub"]), **claims}
        return self.identity(claims)

    def _userinfo(self, url: str, access_token: str, subject: str) -> dict[str, Any]:
        """Claims the provider keeps out of the ID token; only for the same subject."""
        try:
            with self._session(token={"access_token": access_token, "token_type": "Bearer"}) as session:
                response = session.get(url, timeout=self.timeout_s)
                response.raise_for_status()
                info = response.json()
        except (requests.RequestException, ValueError, AuthlibBaseError) as exc:
            raise OidcError(f"the provider's userinfo endpoint cannot be read ({exc}); {_AGAIN}") from exc
        if not isinstance(info, dict) or info.get("sub") != subject:
            raise OidcError(f"the provider's userinfo answer is about another subject; {_AGAIN}")
        return info

    def identity(self, claims: Mapping[str, Any]) -> OidcIdentity:
        username = claims.get(self.username_claim) or claims.get("email")
        if not isinstance(username, str) or not username:
            raise OidcError(
                f"the provider sends no {self.username_claim!r} claim to name the user; set "
                "KURA_OIDC_USERNAME_CLAIM to a claim it sends (e.g. email)"
            )
        groups: list[str] = []
        for claim in (self.groups_claim, self.roles_claim):
            value = claims.get(claim) if claim else None
            if isinstance(value, str):
                groups.append(value)
            elif isinstance(value, list):
                groups += [str(v) for v in value]
        return OidcIdentity(username.lower(), str(claims["iss"]), str(claims["sub"]), tuple(groups), dict(claims))
