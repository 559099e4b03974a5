"""The identity provider's state and policy, shared by its endpoints."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import jinja2
from sqlalchemy import delete
from sqlalchemy.orm import Session, sessionmaker

from modelport.identity.clock import SYSTEM_CLOCK, Clock
from modelport.identity.db import AuthCode, AuthRequest, Client, RefreshToken
from modelport.identity.dex_config import DexConfig
from modelport.identity.keys import KeyRing, RotationPolicy
from modelport.identity.oauth2.params import too_long
from modelport.identity.pending import keep_newest
from modelport.identity.revocation import TokenCutoffs
from modelport.identity.throttle import FailureThrottle
from modelport.identity.tokens import TokenIssuer
from modelport.identity.users import Directory

# Scopes Dex understands (plus cross-client audience scopes, checked separately).
KNOWN_SCOPES = frozenset({"openid", "offline_access", "email", "profile", "groups", "federated:id"})
CROSS_CLIENT_PREFIX = "audience:server:client_id:"
# Dex keeps authorization codes for 30 minutes and pending auth requests for 24 hours.
CODE_TTL_S = 30 * 60
AUTH_REQUEST_TTL_S = 24 * 3600
# Expired one-time rows are deleted at most this often, not on every insert.
PURGE_EVERY_S = 60.0
# Pending auth requests (and, apart, device requests) kept per client.
MAX_PENDING_PER_CLIENT = 10_000
OOB_REDIRECT = "urn:ietf:wg:oauth:2.0:oob"
CLI_CLIENT_ID = "modelport-cli"

TEMPLATES = Path(__file__).parent / "templates"


def sha256_hex(value: str) -> str:
    """How one-time secrets (codes, refresh tokens) are stored."""
    return hashlib.sha256(value.encode()).hexdigest()


def request_hmac(auth_request: AuthRequest) -> str:
    """Binds an approval URL to its auth request (Dex ≥ 2.35: HMAC-SHA256 of the ID)."""
    mac = hmac.new(bytes.fromhex(auth_request.hmac_key), auth_request.request_id.encode(), "sha256")
    return mac.hexdigest()


@dataclass
class Provider:
    """Everything the endpoints need: storage, keys, token minting, policy and templates."""

    issuer: str
    sessions: sessionmaker[Session]
    directory: Directory
    tokens: TokenIssuer
    skip_approval: bool = True
    password_grant: bool = True
    refresh_idle_s: float = 0.0
    refresh_lifetime_s: float = 0.0
    throttle: FailureThrottle = field(default_factory=FailureThrottle)
    # Every expiry, lock and rotation of the provider reads this clock (tests move it).
    clock: Clock = field(default=SYSTEM_CLOCK, repr=False)
    # Anyone can start a login or a device login: see keep_newest for why the oldest go.
    max_pending_per_client: int = MAX_PENDING_PER_CLIENT
    templates: jinja2.Environment = field(
        default_factory=lambda: jinja2.Environment(
            loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True
        )
    )
    _next_purge: dict[str, float] = field(default_factory=dict, repr=False)

    @property
    def device_callback(self) -> str:
        """Where device logins land; the provider finishes them itself."""
        return f"{self.path}/device/callback"

    @property
    def path(self) -> str:
        """The issuer's path ("/dex"): every endpoint lives below it."""
        return urlsplit(self.issuer).path.rstrip("/")

    @classmethod
    def create(
        cls,
        issuer: str,
        sessions: sessionmaker[Session],
        config: DexConfig | None = None,
        *,
        algs: tuple[str, ...] = ("RS256",),
        access_token_ttl_s: float = 3600,
        clock: Clock = SYSTEM_CLOCK,
    ) -> Provider:
        """A provider over a database, with a Dex config's users, clients and expiries."""
        config = config or DexConfig()
        directory = Directory(sessions, clock=clock)
        directory.sync_config(config)
        if directory.get_client(CLI_CLIENT_ID) is None:
            # The `modelport login` CLI and notebooks log in as this public client.
            directory.upsert_client(
                CLI_CLIENT_ID,
                secret=None,
                redirect_uris=[],
                name="modelport CLI",
                public=True,
                source="builtin",
            )
        ring = KeyRing(
            sessions,
            algs,
            RotationPolicy(
                rotate_every_s=config.expiry.signing_keys,
                token_lifetime_s=config.expiry.id_tokens,
            ),
            clock=clock,
        )
        tokens = TokenIssuer(
            issuer.rstrip("/"),
            ring,
            id_token_ttl_s=config.expiry.id_tokens,
            access_token_ttl_s=min(access_token_ttl_s, config.expiry.id_tokens),
            alg=algs[0],
            revocations=TokenCutoffs(sessions),
            clock=clock,
        )
        return cls(
            issuer=issuer.rstrip("/"),
            sessions=sessions,
            directory=directory,
            tokens=tokens,
            skip_approval=config.skip_approval_screen,
            refresh_idle_s=config.expiry.refresh_valid_if_not_used_for,
            refresh_lifetime_s=config.expiry.refresh_absolute_lifetime,
            throttle=FailureThrottle(clock=clock),
            clock=clock,
        )

    def allow_redirects(self, client_id: str, uris: Sequence[str]) -> None:
        """Let a registered client also use these redirect URIs (until the config next loads).

        For the gateway in front of this provider: Kubeflow's Dex config registers its own
        gateway's callback for the client (``/oauth2/callback`` for oauth2-proxy since
        Kubeflow 1.9, ``/authservice/oidc/callback`` in 1.7-1.8), and Dex matches redirect
        URIs exactly (Dex v2.45.0 server/oauth2.go ``validateRedirectURI``), so the callbacks
        this platform's gateway answers on must be added to that client. The gateway passes
        relative paths: they resolve against this provider's own origin, nowhere else.
        """
        with self.sessions.begin() as db:
            client = db.get(Client, client_id)
            if client is None:
                raise ValueError(f"no client {client_id!r} to allow redirects for")
            extra = [uri for uri in uris if uri not in client.redirect_uris]
            if extra:
                client.redirect_uris = [*client.redirect_uris, *extra]

    # ---- policy --------------------------------------------------------------------------

    def redirect_allowed(self, client: Client, redirect_uri: str) -> bool:
        """Exact match with a registered URI; public clients may also use loopback and oob;
        every client may use the provider's own device-flow callback."""
        if too_long("redirect_uri", redirect_uri):
            return False
        if redirect_uri in client.redirect_uris or redirect_uri == self.device_callback:
            return True
        if client.public and not client.redirect_uris:
            if redirect_uri == OOB_REDIRECT:
                return True
            parts = urlsplit(redirect_uri)
            return parts.scheme == "http" and parts.hostname in ("localhost", "127.0.0.1")
        return False

    def scope_problem(self, client: Client, scopes: list[str]) -> str | None:
        """Why these scopes cannot be granted to this client, or None."""
        if "openid" not in scopes:
            return 'Missing required scope(s) ["openid"].'
        unknown = []
        for scope in scopes:
            if scope in KNOWN_SCOPES:
                continue
            if scope.startswith(CROSS_CLIENT_PREFIX):
                peer = self.directory.get_client(scope.removeprefix(CROSS_CLIENT_PREFIX))
                if peer is not None and client.client_id in peer.trusted_peers:
                    continue
            unknown.append(scope)
        if unknown:
            return f"Unrecognized scope(s) {unknown}"
        return None

    @staticmethod
    def audience(client_id: str, scopes: list[str]) -> list[str]:
        """The token audience: the client, then any trusted peers it asked for."""
        peers = [
            s.removeprefix(CROSS_CLIENT_PREFIX) for s in scopes if s.startswith(CROSS_CLIENT_PREFIX)
        ]
        return [client_id, *peers] if peers else [client_id]

    # ---- one-time secrets ----------------------------------------------------------------
    # These write to the database: endpoints call them from the threadpool, never the loop.

    def purge_due(self, table: str, now: float) -> bool:
        """Whether expired rows of ``table`` should be deleted now (once a minute)."""
        if now < self._next_purge.get(table, 0.0):
            return False
        self._next_purge[table] = now + PURGE_EVERY_S
        return True

    def new_auth_request(self, **fields: object) -> AuthRequest:
        """Store a pending authorization request (the client's oldest go past the cap)."""
        now = self.clock.time()
        req = AuthRequest(
            request_id=secrets.token_urlsafe(24),
            hmac_key=secrets.token_hex(32),
            expires_at=now + AUTH_REQUEST_TTL_S,
            **fields,
        )
        with self.sessions.begin() as db:
            if self.purge_due("auth_requests", now):
                db.execute(delete(AuthRequest).where(AuthRequest.expires_at < now))
            db.add(req)
            db.flush()
            keep_newest(db, AuthRequest, req.client_id, self.max_pending_per_client)
        return req

    def issue_code(self, req: AuthRequest) -> str:
        """Turn a logged-in auth request into a single-use code (the request is consumed)."""
        code = secrets.token_urlsafe(32)
        now = self.clock.time()
        with self.sessions.begin() as db:
            if self.purge_due("auth_codes", now):
                db.execute(delete(AuthCode).where(AuthCode.expires_at < now))
            db.add(
                AuthCode(
                    code_sha256=sha256_hex(code),
                    client_id=req.client_id,
                    redirect_uri=req.redirect_uri,
                    user_id=req.user_id or "",
                    scopes=list(req.scopes),
                    nonce=req.nonce,
                    code_challenge=req.code_challenge,
                    code_challenge_method=req.code_challenge_method,
                    expires_at=now + CODE_TTL_S,
                )
            )
            db.execute(delete(AuthRequest).where(AuthRequest.request_id == req.request_id))
        return code

    def new_refresh_token(
        self,
        client_id: str,
        user_id: str,
        scopes: list[str],
        nonce: str,
        family: str | None = None,
        family_created_at: float | None = None,
    ) -> str:
        """A new refresh token, starting a family or continuing one after rotation."""
        token = secrets.token_urlsafe(32)
        now = self.clock.time()
        with self.sessions.begin() as db:
            db.add(
                RefreshToken(
                    token_sha256=sha256_hex(token),
                    family=family or secrets.token_hex(16),
                    client_id=client_id,
                    user_id=user_id,
                    scopes=list(scopes),
                    nonce=nonce,
                    created_at=now,
                    family_created_at=family_created_at or now,
                    last_used_at=now,
                )
            )
        return token
