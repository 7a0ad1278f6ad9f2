"""Trusted CDS clients and the JWT check every CDS Hooks call must pass.

CDS Hooks 2.0 ("Trusting CDS Clients"): each call carries
``Authorization: Bearer <JWT>`` signed with the client's private key. The
service keeps an allow-list of issuers with their JWK Sets (given as a file,
or a URL fetched and cached), and accepts a token only when

- the algorithm is asymmetric (RSA, RSA-PSS, ECDSA, EdDSA) — never ``none``
  and never HMAC;
- the header has ``typ: JWT`` and a ``kid`` found in the issuer's JWK Set, and
  a ``jku``, if any, is exactly one registered for the issuer: its JWK Set
  URL or a ``jku`` registered with it (the CDS Hooks sandbox always sends
  one, even to services holding its keys as a file). A ``jku`` is only ever
  compared: the keys come from the registered file or JWK Set URL, and a URL
  a token names is never fetched;
- the signature verifies, ``iss`` is trusted, ``aud`` is the URL of the
  endpoint being called, ``exp``/``iat``/``jti`` are present and ``exp`` is
  in the future;
- the ``jti`` was not seen before from this issuer (kept until expiry).

Anything else is a 401 with no detail (:class:`Unauthorised`): an attacker
learns nothing about which check failed.

A JWK Set given as a URL is fetched when first needed and kept for
``JWKS_TTL_SECONDS``; a token naming a key id the set lacks (the client may
have rotated its keys) triggers at most one early refetch per issuer every
``JWKS_REFETCH_SECONDS``, and a failed fetch is not retried sooner either:
tokens with made-up key ids cannot make careloop fetch on every call.
Concurrent calls share one fetch.

A client's ``fhirServer`` is only ever contacted (with the bearer token the
client sends) when it is one of the FHIR servers registered for the client
(``careloop cds trust-client --fhir-server URL``): a trusted client cannot
make careloop send requests, or forward its token, anywhere else.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

import httpx
import jwt
from jwt import PyJWK, PyJWKSet
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from careloop.core.clock import utcnow
from careloop.core.errors import Conflict, ErrorDetail, InputError, NotFound
from careloop.store.database import Registry
from careloop.store.models.knowledge import CdsClient, CdsJti
from careloop.trust.principal import Principal
from careloop.trust.work import unit_of_work

ASYMMETRIC_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
LEEWAY_SECONDS = 30
"""Clock skew tolerated on ``exp``/``iat`` between the EHR and careloop."""
JWKS_TTL_SECONDS = 300
"""How long a fetched JWK Set is used before it is fetched again."""
JWKS_REFETCH_SECONDS = 60
"""Least time between two fetches of one issuer's JWK Set (unknown key ids, failures)."""
MAX_TOKEN_LIFETIME = timedelta(hours=1)
"""A ``jti`` is remembered until its token expires; longer-lived tokens are refused."""


_JWKS_URL_PREFIXES = ("https://", "http://127.0.0.1", "http://localhost", "http://[::1]")


class Unauthorised(Exception):
    """The call is not from a trusted CDS client; answered 401 without detail."""


@dataclass(frozen=True)
class TrustedClient:
    """A CDS client (EHR) the service accepts calls from."""

    issuer: str
    """The ``iss`` its JWTs carry."""
    jwks_url: str | None
    """Where its JWK Set is published, if it is not given out of band."""
    site_code: str | None
    """The careloop site it serves (deployments limited to sites use it)."""
    origins: tuple[str, ...]
    """Browser origins allowed to call the service (CORS)."""
    key_ids: tuple[str, ...]
    """Key ids of the out-of-band JWK Set (empty when fetched from the URL)."""
    jku_urls: tuple[str, ...] = ()
    """``jku`` URLs its JWTs may name besides :attr:`jwks_url` (compared, never fetched)."""
    fhir_servers: tuple[str, ...] = ()
    """FHIR base URLs careloop may fetch prefetch data from for this client."""

    @property
    def accepted_jku(self) -> frozenset[str]:
        """Every ``jku`` a token of this client may carry."""
        return frozenset({*self.jku_urls, *([self.jwks_url] if self.jwks_url else [])})


@dataclass(frozen=True)
class VerifiedCall:
    """Who made a call whose JWT passed every check."""

    issuer: str
    """The trusted client's issuer."""
    tenant: str | None
    """The ``tenant`` claim, if any."""
    site_code: str | None
    """The client's careloop site, if registered."""
    jti: str = ""
    """The token's id, remembered against replay (see :func:`remember_jti`)."""
    jti_expires: datetime | None = None
    """Until when the id must be remembered."""
    fhir_servers: tuple[str, ...] = ()
    """The client's registered FHIR servers: the only ones careloop contacts for it."""


def _parse_jwks(text: str, where: str) -> dict[str, tuple[PyJWK, str | None]]:
    """Keys by kid, each with the ``alg`` its JWK pins (if any)."""
    try:
        data = json.loads(text)
        PyJWKSet.from_dict(data)  # refuses a set with no usable key
        raw = [k for k in data["keys"] if isinstance(k, dict)]
        keys = {str(k.get("kid")): (PyJWK.from_dict(k), k.get("alg")) for k in raw}
    except (ValueError, KeyError, TypeError, jwt.PyJWTError) as exc:
        raise InputError(f"{where} is not a usable JWK Set: {exc}") from exc
    for item in raw:
        if item.get("kty") == "oct" or item.get("d") is not None:
            raise InputError(
                f"{where} holds a symmetric or private key; give the client's public keys only."
            )
        if not item.get("kid"):
            raise InputError(f"{where} has a key without `kid`; CDS Hooks JWTs name their key.")
    return keys


def normalise_fhir_server(url: str) -> str:
    """A FHIR base URL as compared with a call's ``fhirServer`` (no trailing slash)."""
    return url.strip().rstrip("/")


def _fhir_server_problem(url: str) -> str | None:
    parsed = urlsplit(url)
    if parsed.scheme not in ("https", "http") or not parsed.hostname:
        return f"The FHIR server {url!r} must be an absolute https URL."
    if parsed.username or parsed.password or parsed.query or parsed.fragment:
        return f"The FHIR server {url!r} must not hold credentials, a query or a fragment."
    if parsed.scheme == "http" and not url.startswith(_JWKS_URL_PREFIXES):
        return f"The FHIR server {url!r} must use https (plain http only on loopback)."
    return None


def trust_client(
    registry: Registry,
    principal: Principal,
    *,
    issuer: str,
    jwks_url: str | None = None,
    jwks_file: Path | None = None,
    jwks_text: str | None = None,
    site: str | None = None,
    origins: Sequence[str] = (),
    jku: Sequence[str] = (),
    fhir_servers: Sequence[str] = (),
) -> TrustedClient:
    """Add (or update) a trusted CDS client: its issuer and its JWK Set (URL, file or text).

    ``jwks_text`` is the JWK Set itself (as pasted on the admin page), read as
    a file given with ``jwks_file`` is.

    ``jku`` lists the URLs the client's tokens may name in their ``jku``
    header besides the JWK Set URL (a client whose keys are given as a file
    but that sends a ``jku``, like the CDS Hooks sandbox). They are compared
    with a token's ``jku``, never fetched: the keys stay those of the file or
    of ``jwks_url``.

    ``fhir_servers`` lists the FHIR base URLs the client's calls may name as
    ``fhirServer`` for careloop to fetch missing prefetch data from (with the
    call's bearer token); careloop contacts no other. Registering again
    replaces the list.
    """
    jwks_text, key_ids, servers = _checked_client(
        issuer,
        jwks_url,
        jwks_file,
        jwks_text,
        origins=origins,
        jku=jku,
        fhir_servers=fhir_servers,
    )
    with unit_of_work(registry, principal, "cds.manage") as work:
        row = work.session.scalar(select(CdsClient).where(CdsClient.issuer == issuer))
        if row is None:
            row = CdsClient(issuer=issuer)
            work.session.add(row)
        row.jwks_url = jwks_url
        row.jwks = jwks_text
        row.site_code = site
        row.origins = json.dumps(list(origins))
        row.jku_urls = json.dumps(sorted(set(jku)))
        row.fhir_servers = json.dumps(servers)
        row.active = True
        work.audit(
            "cds.trust_client",
            "cds",
            details={
                "issuer": issuer,
                "jwks_url": jwks_url,
                "site": site,
                "jku": sorted(set(jku)),
                "fhir_servers": servers,
            },
        )
    _CACHE.forget(issuer)
    return TrustedClient(
        issuer,
        jwks_url,
        site,
        tuple(origins),
        key_ids,
        tuple(sorted(set(jku))),
        tuple(servers),
    )


def _checked_client(
    issuer: str,
    jwks_url: str | None,
    jwks_file: Path | None,
    jwks_text: str | None,
    *,
    origins: Sequence[str],
    jku: Sequence[str],
    fhir_servers: Sequence[str],
) -> tuple[str | None, tuple[str, ...], list[str]]:
    """Check a client's options before anything is stored.

    Returns the JWK Set read from ``jwks_file`` or given as ``jwks_text`` (or
    None), its key ids and the normalised, sorted FHIR server URLs. Each
    refusal names the option it is about in its details (``jwks``,
    ``jwks_url``, ``issuer``, ``jku``, ``origins``, ``fhir_servers``), so a
    form can show it beside the field.
    """
    if sum(x is not None for x in (jwks_url, jwks_file, jwks_text)) != 1:
        _refuse("jwks", "Give the client's JWK Set as exactly one of --jwks-url or --jwks-file.")
    if not issuer.strip():
        _refuse("issuer", "The issuer (iss) must not be empty.")
    for url in jku:
        if not url.startswith(_JWKS_URL_PREFIXES) or url != url.strip():
            _refuse(
                "jku",
                f"The jku {url!r} must be the exact https URL the client's tokens name "
                "(plain http only on loopback).",
            )
    key_ids: tuple[str, ...] = ()
    where = "The JWK Set"
    if jwks_file is not None:
        try:
            jwks_text = jwks_file.read_text()
        except OSError as exc:
            raise InputError(f"Cannot read {jwks_file}: {exc.strerror}.") from exc
        where = str(jwks_file)
    if jwks_text is not None:
        try:
            key_ids = tuple(_parse_jwks(jwks_text, where))
        except InputError as exc:
            _refuse("jwks", exc.message, cause=exc)
    elif jwks_url is not None and not jwks_url.startswith(_JWKS_URL_PREFIXES):
        _refuse("jwks_url", "The JWK Set URL must use https (plain http only on loopback).")
    for origin in origins:
        if not origin.startswith(("https://", "http://")) or origin.endswith("/"):
            _refuse("origins", f"Origin {origin!r} must look like https://ehr.example.org.")
    servers = sorted({normalise_fhir_server(u) for u in fhir_servers})
    for url in servers:
        problem = _fhir_server_problem(url)
        if problem is not None:
            _refuse("fhir_servers", problem)
    return jwks_text, key_ids, servers


def _refuse(where: str, message: str, *, cause: Exception | None = None) -> NoReturn:
    """Refuse one of a client's options: the detail names the option and says what is wrong."""
    raise InputError(
        "The CDS client was not trusted.", details=[ErrorDetail(where, message)]
    ) from cause


def distrust_client(registry: Registry, principal: Principal, *, issuer: str) -> None:
    """Stop trusting a client: its calls are refused from now on."""
    with unit_of_work(registry, principal, "cds.manage") as work:
        row = work.session.scalar(select(CdsClient).where(CdsClient.issuer == issuer))
        if row is None:
            raise NotFound(f"No trusted CDS client has the issuer {issuer!r}.")
        if not row.active:
            raise Conflict(f"{issuer!r} is already distrusted.")
        row.active = False
        work.audit("cds.distrust_client", "cds", details={"issuer": issuer})
    _CACHE.forget(issuer)


def list_clients(registry: Registry, principal: Principal) -> list[TrustedClient]:
    """The trusted clients."""
    with unit_of_work(registry, principal, "cds.manage") as work:
        rows = work.session.scalars(
            select(CdsClient).where(CdsClient.active.is_(True)).order_by(CdsClient.issuer)
        )
        return [
            TrustedClient(
                r.issuer,
                r.jwks_url,
                r.site_code,
                tuple(json.loads(r.origins)),
                tuple(_parse_jwks(r.jwks, r.issuer)) if r.jwks else (),
                tuple(json.loads(r.jku_urls or "[]")),
                tuple(json.loads(r.fhir_servers or "[]")),
            )
            for r in rows
        ]


@dataclass
class _Entry:
    client: TrustedClient
    keys: dict[str, tuple[PyJWK, str | None]]
    fetched_at: float


class _ClientCache:
    """Trusted clients and their keys, held briefly in memory (the hot path of every call)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[tuple[int, str], _Entry] = {}
        self._missing: dict[tuple[int, str], float] = {}
        self._attempts: dict[tuple[int, str], float] = {}
        """When each issuer's JWK Set URL was last fetched (or tried)."""
        self._loading: dict[tuple[int, str], threading.Lock] = {}
        self.fetches = 0
        """JWK Set fetches made so far (for tests and monitoring)."""

    def forget(self, issuer: str) -> None:
        with self._lock:
            for table in (self._entries, self._missing, self._attempts):
                for key in [k for k in table if k[1] == issuer]:
                    del table[key]

    def _usable(self, key: tuple[int, str], now: float, refresh: bool) -> _Entry | None:
        """The cached entry when no load is due (caller holds the lock)."""
        entry = self._entries.get(key)
        if entry is None or now - entry.fetched_at >= JWKS_TTL_SECONDS:
            return None
        if not refresh:
            return entry
        # A refresh for an unknown key id: at most one fetch per JWKS_REFETCH_SECONDS.
        if now - self._attempts.get(key, -1e9) < JWKS_REFETCH_SECONDS:
            return entry
        return None

    def get(self, registry: Registry, issuer: str, *, refresh: bool = False) -> _Entry | None:
        key = (id(registry), issuer)
        with self._lock:
            cached = self._usable(key, time.monotonic(), refresh)
            if cached is not None:
                return cached
            if not refresh and time.monotonic() - self._missing.get(key, -1e9) < 5:
                return None  # an unknown issuer does not cost a query per call
            loading = self._loading.setdefault(key, threading.Lock())
        # One load per issuer at a time; the others wait and use its result.
        with loading:
            with self._lock:
                cached = self._usable(key, time.monotonic(), refresh)
                if cached is not None:
                    return cached
            return self._load(registry, issuer, key)

    def _load(self, registry: Registry, issuer: str, key: tuple[int, str]) -> _Entry | None:
        now = time.monotonic()
        with registry.transaction() as session:
            row = session.scalar(
                select(CdsClient).where(CdsClient.issuer == issuer, CdsClient.active.is_(True))
            )
            if row is None:
                with self._lock:
                    self._missing[key] = now
                    self._entries.pop(key, None)
                return None
            client = TrustedClient(
                row.issuer,
                row.jwks_url,
                row.site_code,
                tuple(json.loads(row.origins)),
                (),
                tuple(json.loads(row.jku_urls or "[]")),
                tuple(json.loads(row.fhir_servers or "[]")),
            )
            jwks_text = row.jwks
        if jwks_text is None and client.jwks_url:
            with self._lock:
                stale = self._entries.get(key)
                if now - self._attempts.get(key, -1e9) < JWKS_REFETCH_SECONDS:
                    # Fetched (or failed) moments ago: no new fetch before the interval.
                    return stale if stale and now - stale.fetched_at < JWKS_TTL_SECONDS else None
                self._attempts[key] = now
                self.fetches += 1
            try:
                response = httpx.get(client.jwks_url, timeout=5, follow_redirects=False)
                response.raise_for_status()
                jwks_text = response.text
            except httpx.HTTPError:
                return None
        try:
            keyset = _parse_jwks(jwks_text or "{}", issuer)
        except InputError:
            return None
        entry = _Entry(client, keyset, now)
        with self._lock:
            self._entries[key] = entry
            self._missing.pop(key, None)
        return entry

    def origins(self, registry: Registry) -> frozenset[str]:
        with registry.transaction() as session:
            rows = session.scalars(select(CdsClient.origins).where(CdsClient.active.is_(True)))
            return frozenset(o for text in rows for o in json.loads(text))


_CACHE = _ClientCache()


def allowed_origins(registry: Registry) -> frozenset[str]:
    """Browser origins of the trusted clients (for CORS)."""
    return _CACHE.origins(registry)


def remember_jti(session: Session, call: VerifiedCall) -> None:
    """Record the call's JWT id in ``session``; :class:`Unauthorised` if it was used before.

    The service calls this inside the transaction that stores the call's
    effects, so a replayed token changes nothing and each call costs one
    write transaction.
    """
    if call.jti_expires is None:
        return
    try:
        with session.begin_nested():
            session.add(CdsJti(issuer=call.issuer, jti=call.jti, expires_at=call.jti_expires))
    except IntegrityError as exc:
        raise Unauthorised from exc
    # Prune the expired now and then, within the same transaction.
    if hash(call.jti) % 200 == 0:
        session.execute(delete(CdsJti).where(CdsJti.expires_at < utcnow()))


def verify_call(
    registry: Registry, token: str | None, *, audience: str, remember: bool = True
) -> VerifiedCall:
    """Check a call's bearer JWT; :class:`Unauthorised` unless it passes every check.

    With ``remember`` the token's ``jti`` is recorded at once (in a
    transaction of its own); without it the caller must pass the result to
    :func:`remember_jti` in the transaction that stores what the call did.
    """
    if not token:
        raise Unauthorised
    try:
        header = jwt.get_unverified_header(token)
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise Unauthorised from exc
    alg = header.get("alg")
    if alg not in ASYMMETRIC_ALGORITHMS or str(header.get("typ", "")).upper() != "JWT":
        raise Unauthorised
    issuer = claims.get("iss")
    kid = header.get("kid")
    if not isinstance(issuer, str) or not isinstance(kid, str):
        raise Unauthorised
    entry = _CACHE.get(registry, issuer)
    if entry is None:
        raise Unauthorised
    # Exactly a registered URL, compared as text; whatever it names is never fetched.
    if "jku" in header and header["jku"] not in entry.client.accepted_jku:
        raise Unauthorised
    key = entry.keys.get(kid)
    if key is None and entry.client.jwks_url:
        # The client may have rotated its keys: fetch once more.
        refreshed = _CACHE.get(registry, issuer, refresh=True)
        key = refreshed.keys.get(kid) if refreshed else None
    if key is None or (key[1] is not None and key[1] != alg):
        raise Unauthorised
    try:
        verified: Mapping[str, Any] = jwt.decode(
            token,
            key=key[0].key,
            algorithms=[alg],
            audience=audience,
            issuer=issuer,
            leeway=LEEWAY_SECONDS,
            options={"require": ["iss", "aud", "exp", "iat", "jti"]},
        )
    except jwt.PyJWTError as exc:
        raise Unauthorised from exc
    jti = verified["jti"]
    expires = datetime.fromtimestamp(float(verified["exp"]), UTC)
    if not isinstance(jti, str) or not jti or expires - utcnow() > MAX_TOKEN_LIFETIME:
        raise Unauthorised
    tenant = verified.get("tenant")
    call = VerifiedCall(
        issuer,
        tenant if isinstance(tenant, str) else None,
        entry.client.site_code,
        jti=jti,
        jti_expires=expires + timedelta(seconds=LEEWAY_SECONDS),
        fhir_servers=entry.client.fhir_servers,
    )
    if remember:
        with registry.transaction() as session:
            remember_jti(session, call)
    return call
