"""Configuration: one settings class, every field an `MPESA_BRIDGE_*` variable (or `.env`).

`.env.example` documents each variable. Production refuses to start with a default or missing
master key, without a public base URL (Daraja must reach our callbacks), or with the simulator.
"""

from __future__ import annotations

import contextlib
import math
import os
import secrets
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from mpesa_bridge.core.crypto import MasterKeyError, generate_master_key, parse_master_key

SANDBOX_URL = "https://sandbox.safaricom.co.ke"
PRODUCTION_URL = "https://api.safaricom.co.ke"
SIMULATOR_CONSUMER_KEY = "sim_consumer_key"
SIMULATOR_CONSUMER_SECRET = "sim_consumer_secret"  # public test value, like Daraja's sandbox ones
SANDBOX_SHORTCODE = "174379"
SANDBOX_PASSKEY = "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919"  # published by Safaricom
# The sandbox's initiator and its test password (published by Safaricom; the simulator accepts them).
SANDBOX_INITIATOR = "testapi"
SANDBOX_INITIATOR_PASSWORD = "Safaricom999!*!"
_DEV_MASTER_KEY_FILE = "master.key"
# Safaricom's published callback addresses plus two legacy ones (reference §17).
DEFAULT_CALLBACK_IPS = ",".join(
    [
        "196.201.214.200",
        "196.201.214.206",
        "196.201.213.114",
        "196.201.214.207",
        "196.201.214.208",
        "196.201.213.44",
        "196.201.212.127",
        "196.201.212.138",
        "196.201.212.129",
        "196.201.212.136",
        "196.201.212.74",
        "196.201.212.69",
        "196.201.212.128",
        "196.201.212.132",
    ]
)
# Hosts that mean "every interface" and the loopback address that reaches them.
_WILDCARD_HOSTS = {"0.0.0.0": "127.0.0.1", "::": "[::1]", "": "127.0.0.1"}  # noqa: S104 - not a bind


class ConfigError(Exception):
    """The configuration cannot be used; the message says what to set."""


class Settings(BaseSettings):
    """Everything the bridge reads from its environment."""

    # env_ignore_empty: `MPESA_BRIDGE_LOG_JSON=` (a blank line copied from .env.example) means "unset".
    model_config = SettingsConfigDict(
        env_prefix="MPESA_BRIDGE_", env_file=".env", env_file_encoding="utf-8", extra="ignore", env_ignore_empty=True
    )

    env: Literal["development", "production"] = Field(
        "development", description="development (local defaults, simulator) or production (strict)"
    )
    host: str = Field("127.0.0.1", description="interface the HTTP server binds to")
    port: int = Field(8000, ge=1, le=65535, description="port the HTTP server listens on")
    workers: int = Field(
        1, ge=1, le=64, description="server processes `serve` runs on the port; above 1 needs PostgreSQL"
    )
    data_dir: Path = Field(Path(".data"), description="where SQLite and development secrets live")
    database_url: str | None = Field(
        None, description="SQLAlchemy URL; default sqlite+aiosqlite:///<data_dir>/bridge.db; postgresql://… for PG"
    )
    public_base_url: str | None = Field(
        None, description="public https URL Daraja reaches us at (callback URLs are built from it)"
    )
    master_key: SecretStr | None = Field(
        None, description="32-byte base64 key sealing Daraja credentials (`mpesa-bridge keygen`)"
    )
    admin_token: SecretStr | None = Field(None, description="bearer token for /v1/admin/*; unset disables it")
    migrate_on_start: bool | None = Field(None, description="run migrations at start; default: development only")
    simulator_enabled: bool | None = Field(
        None, description="mount the Daraja simulator at /simulator; default: on in development"
    )
    simulator_url: str | None = Field(
        None, description="base URL of the Daraja simulator; default: <public_base_url>/simulator when mounted"
    )
    simulator_callback_delay: float = Field(3.0, ge=0, description="seconds before the simulated customer answers")
    simulator_late_callback_delay: float = Field(120.0, ge=0, description="delay for the 'late callback' number")
    simulator_result_delay: float = Field(
        2.0,
        ge=0,
        allow_inf_nan=False,
        description="seconds before the simulator posts a payout's, reversal's or query's Result",
    )
    simulator_consumer_key: str = Field(SIMULATOR_CONSUMER_KEY, description="consumer key the simulator accepts")
    simulator_consumer_secret: SecretStr = Field(
        SecretStr(SIMULATOR_CONSUMER_SECRET), description="consumer secret the simulator accepts"
    )
    daraja_sandbox_url: str = Field(SANDBOX_URL, description="Daraja sandbox base URL")
    daraja_production_url: str = Field(PRODUCTION_URL, description="Daraja production base URL")
    daraja_certificate_sandbox: str | None = Field(
        None,
        description="the sandbox's initiator certificate (Daraja portal): a PEM/DER file's path or the PEM text",
    )
    daraja_certificate_production: str | None = Field(
        None,
        description="production's initiator certificate (Daraja portal): a PEM/DER file's path or the PEM text",
    )
    daraja_certificate_simulator: str | None = Field(
        None, description="the simulator's certificate; unset: fetched from the simulator on first use"
    )
    daraja_connect_timeout: float = Field(5.0, gt=0, description="seconds to connect to Daraja")
    daraja_timeout: float = Field(30.0, gt=0, description="seconds to wait for Daraja's answer")
    max_amount: int = Field(250_000, ge=1, le=250_000, description="largest amount a payment may ask for")
    metadata_max_bytes: int = Field(4096, ge=0, description="largest metadata object, as JSON bytes")
    max_body_bytes: int = Field(65_536, ge=1024, description="largest request body accepted")
    header_timeout: float = Field(
        10.0, gt=0, allow_inf_nan=False, description="seconds a client has to send a complete request head"
    )
    body_timeout: float = Field(
        30.0, gt=0, allow_inf_nan=False, description="seconds a client has to send a request body, after its head"
    )
    keep_alive_timeout: float = Field(
        5.0, gt=0, allow_inf_nan=False, description="seconds an idle kept-alive connection stays open"
    )
    max_connections: int = Field(4096, ge=0, description="open connections one server process accepts (0: no cap)")
    max_connections_per_address: int = Field(
        256, ge=0, description="open connections per client address; trusted proxies exempt (0: no cap)"
    )
    reconcile_enabled: bool = Field(
        True, description="run inbox, reconciliation and webhook delivery workers inside the server"
    )
    reconcile_interval: float = Field(5.0, gt=0, description="seconds between reconciliation passes")
    reconcile_query_delay: float = Field(60.0, ge=0, description="seconds after a push before the first STK Query")
    reconcile_max_age: float = Field(600.0, gt=0, description="seconds after which a pending payment expires")
    reconcile_push_grace: float = Field(120.0, ge=0, description="seconds before an unanswered push is unknown")
    reconcile_backoff: str = Field("15,30,60", description="comma-separated seconds between STK Queries")
    reconcile_after_expiry: float = Field(
        86_400.0, ge=0, allow_inf_nan=False, description="seconds an expiry on our own timeout is still queried"
    )
    reconcile_after_expiry_backoff: str = Field(
        "300,900,1800,3600,7200,14400", description="comma-separated seconds between those queries"
    )
    # --- payouts (B2C) and Transaction Status: docs/payouts.md ---
    payout_max_amount: int = Field(
        150_000, ge=10, le=250_000, description="default largest payout (a project's own setting wins)"
    )
    payout_daily_limit: int = Field(
        1_000_000, ge=10, description="default sum of a project's payouts per Africa/Nairobi day"
    )
    payout_send_grace: float = Field(
        120.0, gt=0, allow_inf_nan=False, description="seconds a payout may stay sending/queued before reconciling"
    )
    payout_result_wait: float = Field(
        300.0, gt=0, allow_inf_nan=False, description="seconds to wait for a B2C Result before Transaction Status"
    )
    payout_query_backoff: str = Field("5,30,120,600", description="comma-separated seconds between status queries")
    payout_not_found_limit: int = Field(
        3, ge=1, description="'no such transaction' answers before an unknown payout is failed"
    )
    payout_b2c_version: Literal["v3", "v1"] = Field("v3", description="B2C API version: v3 or legacy v1")
    query_result_deadline: float = Field(
        600.0,
        gt=0,
        allow_inf_nan=False,
        description="seconds a Transaction Status or balance query waits for its Result before it fails (no_result)",
    )
    reconcile_query_rate: float = Field(
        20.0, gt=0, allow_inf_nan=False, description="STK Queries per second one process sends Daraja, evenly spaced"
    )
    inbox_poll_interval: float = Field(2.0, gt=0, description="seconds between sweeps for unprocessed callbacks")
    inbox_sweep_batch: int = Field(500, ge=1, description="most stored callbacks one sweep reads")
    inbox_max_attempts: int = Field(10, ge=1, description="tries of a callback whose handling fails, then `failed`")
    inbox_retry_delay: float = Field(
        10.0, gt=0, le=3600, allow_inf_nan=False, description="seconds before a failed callback's 2nd try; doubles"
    )
    log_level: str = Field("INFO", description="DEBUG, INFO, WARNING or ERROR")
    log_json: bool | None = Field(None, description="JSON log lines; default: on in production")
    fault_injection: str | None = Field(None, description="testing only, refused in production")
    # --- observability (docs/operations.md) ---------------------------------------------------------
    metrics_token: SecretStr | None = Field(
        None, description="bearer token that reads /metrics on the main port (needed there in production)"
    )
    metrics_port: int | None = Field(
        None, ge=1, le=65535, description="also serve /metrics, without a token, on this port (keep it private)"
    )
    sentry_dsn: SecretStr | None = Field(
        None, description="report unexpected errors to Sentry (or a compatible server) at this DSN; unset: off"
    )
    sentry_environment: str | None = Field(None, description="Sentry's environment name; default: MPESA_BRIDGE_ENV")
    sentry_release: str | None = Field(None, description="Sentry's release name; default: mpesa-bridge@<version>")
    sentry_sample_rate: float = Field(
        1.0, ge=0.0, le=1.0, allow_inf_nan=False, description="share of error events sent to Sentry (0 to 1)"
    )
    # --- security --------------------------------------------------------------------------------
    old_master_keys: SecretStr | None = Field(
        None, description="comma-separated previous master keys, still accepted for reading during rotation"
    )
    key_rotation_grace: float = Field(
        86_400.0, ge=0, description="seconds an old secret key keeps working after a rotation (0: stops at once)"
    )
    key_cache_ttl: float = Field(
        1.0, ge=0, description="seconds a verified key is trusted without a database look-up (revocation delay)"
    )
    signature_tolerance: float = Field(300.0, gt=0, description="signed requests: accepted clock skew, seconds")
    idempotency_ttl: float = Field(86_400.0, gt=0, description="seconds an Idempotency-Key is remembered")
    idempotency_lock_timeout: float = Field(
        300.0, gt=0, description="seconds after which an unfinished request's Idempotency-Key may be retried"
    )
    duplicate_guard_window: float = Field(
        600.0, ge=0, description="seconds a pending push blocks the same phone+amount+reference (0: off)"
    )
    phone_lock_window: float = Field(
        120.0, ge=0, description="seconds a pending push blocks another push to the same phone and shortcode (0: off)"
    )
    callback_allowlist: bool | None = Field(
        None, description="accept Daraja callbacks only from callback_allowed_ips; default: on in production"
    )
    callback_allowed_ips: str = Field(
        DEFAULT_CALLBACK_IPS, description="comma-separated addresses/CIDRs Safaricom calls back from (reference §17)"
    )
    callback_allowlist_action: Literal["reject", "quarantine"] = Field(
        "reject", description="unlisted source: reject (403, stored flagged) or quarantine (200, stored flagged)"
    )
    trusted_proxies: str = Field(
        "", description="comma-separated proxy addresses/CIDRs whose X-Forwarded-For is believed"
    )
    redis_url: str | None = Field(
        None, description="redis://…: shared rate limits and replay guard, live updates across instances"
    )
    rate_limit_enabled: bool = Field(True, description="apply the rate limits below")
    rate_limit_key: str = Field("100/second", description="requests per secret key (limits syntax)")
    rate_limit_ip: str = Field("30/second", description="unauthenticated requests per client IP")
    rate_limit_create: str = Field("20/second", description="payment creations per secret key")
    rate_limit_phone: str = Field("3/10minutes", description="STK pushes to one phone per project")
    rate_limit_handshake: str = Field("10/second", description="new Socket.IO sessions per client address")
    rate_limit_browser_create: str = Field(
        "10/minute", description="checkout sessions opened with a publishable key, per client address"
    )
    rate_limit_browser_phone: str = Field(
        "3/hour", description="STK pushes to one phone per project for sessions opened with a publishable key"
    )
    rate_limit_ipv6_prefix: int = Field(
        64, ge=1, le=128, description="IPv6 clients are counted per network of this prefix length (IPv4 per address)"
    )
    # --- C2B (docs/c2b.md) -------------------------------------------------------------------------
    c2b_validation_timeout: float = Field(
        5.0,
        gt=0,
        le=7.5,
        description="seconds the merchant's server has to answer a C2B validation before the project's default "
        "answers Daraja (Daraja waits about 8)",
    )
    c2b_register_version: int = Field(2, ge=1, le=2, description="C2B register URL API version: 2 (masked MSISDN) or 1")
    # --- webhooks --------------------------------------------------------------------------------
    webhook_timeout: float = Field(
        10.0, gt=0, le=60, description="seconds a webhook endpoint has to answer (2xx) before the attempt fails"
    )
    webhook_allow_private_urls: bool = Field(
        False, description="let live-mode webhook URLs reach private, loopback and link-local addresses"
    )
    webhook_test_allow_loopback: bool | None = Field(
        None, description="let test-mode webhook URLs reach loopback; default: on in development, off in production"
    )
    webhook_secret_grace: float = Field(
        86_400.0, ge=0, description="seconds a webhook endpoint's old secret keeps signing after a rotation"
    )
    webhook_poll_interval: float = Field(1.0, gt=0, description="seconds between delivery worker passes")
    webhook_concurrency: int = Field(10, ge=1, le=100, description="deliveries one worker sends at the same time")
    event_retention_days: int = Field(
        30, ge=1, description="days events, their deliveries and attempts are kept before pruning"
    )
    # --- live updates (SSE, Socket.IO) -----------------------------------------------------------
    sse_heartbeat_interval: float = Field(15.0, gt=0, description="seconds between SSE heartbeat comment lines")
    sse_max_connection_age: float = Field(
        1800.0, gt=0, description="seconds an SSE stream stays open before the server ends it with a retry: hint"
    )
    sse_retry_delay: float = Field(2.0, ge=0, description="seconds SSE clients are told to wait before reconnecting")
    sse_poll_interval: float = Field(
        10.0, gt=0, description="seconds between an SSE stream's own reads of the events table when nothing rings"
    )
    sse_max_streams_per_key: int = Field(
        100, ge=1, description="SSE streams one secret key (or one payment's client secret) may hold open per process"
    )
    sse_max_streams_per_address: int = Field(
        50, ge=1, description="SSE streams one client address may hold open per process"
    )
    realtime_cors_origins: str = Field(
        "*", description="comma-separated browser origins allowed to open SSE streams and Socket.IO connections"
    )
    realtime_key_recheck_interval: float = Field(
        60.0, gt=0, description="seconds between checks that the key behind an open stream or socket still works"
    )
    realtime_join_timeout: float = Field(
        5.0, gt=0, description="seconds a Socket.IO connection has to authenticate before it is closed"
    )
    realtime_max_connect_failures: int = Field(
        3, ge=1, description="refused Socket.IO connects after which the connection is closed"
    )
    # --- dashboard ---------------------------------------------------------------------------------
    dashboard_enabled: bool = Field(True, description="serve the admin dashboard at /dashboard")
    dashboard_session_idle: float = Field(
        1800.0, gt=0, description="seconds without a request after which a dashboard session ends"
    )
    dashboard_session_max_age: float = Field(
        43_200.0, gt=0, description="seconds after sign-in at which a dashboard session ends, active or not"
    )
    dashboard_signup: bool = Field(False, description="let anyone create a dashboard account at /dashboard/signup")
    password_hash_time_cost: int = Field(3, ge=1, le=20, description="argon2id passes per password hash")
    password_hash_memory_kib: int = Field(
        65_536, ge=1024, le=1_048_576, description="argon2id memory per password hash, KiB"
    )
    smtp_url: SecretStr | None = Field(
        None,
        description="smtp://user:password@host:587 (STARTTLS) or smtps://…:465 for the dashboard's emails; "
        "unset: the links are written to the log",
    )
    smtp_from: str = Field("mpesa-bridge <no-reply@localhost>", description="From: of the dashboard's emails")
    doctor_check_url: str | None = Field(
        None,
        description="a check host outside your network that `mpesa-bridge doctor` asks to fetch the public "
        'health URL (POST {"url": …} -> {"status": <HTTP status>}); unset: reachability is not checked',
    )

    @model_validator(mode="after")
    def _production_guard(self) -> Settings:
        if self.env != "production":
            return self
        problems = []
        if self.master_key is None or not self.master_key.get_secret_value().strip():
            problems.append("MPESA_BRIDGE_MASTER_KEY is required (generate one with `mpesa-bridge keygen`)")
        if not self.public_base_url:
            problems.append("MPESA_BRIDGE_PUBLIC_BASE_URL is required (Daraja must reach the callback URLs)")
        elif urlsplit(self.public_base_url).scheme != "https":
            problems.append("MPESA_BRIDGE_PUBLIC_BASE_URL must be https in production")
        if self.simulator_enabled or self.simulator_url:
            problems.append("the Daraja simulator cannot be used in production (unset MPESA_BRIDGE_SIMULATOR_*)")
        if self.fault_injection:
            problems.append("MPESA_BRIDGE_FAULT_INJECTION is for tests only")
        if problems:
            raise ValueError("production configuration refused: " + "; ".join(problems))
        return self

    @model_validator(mode="after")
    def _metrics_port_apart(self) -> Settings:
        if self.metrics_port is not None and self.metrics_port == self.port:
            raise ValueError("MPESA_BRIDGE_METRICS_PORT must differ from MPESA_BRIDGE_PORT")
        return self

    @property
    def production(self) -> bool:
        return self.env == "production"

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{(self.data_dir / 'bridge.db').resolve()}"

    @property
    def resolved_public_base_url(self) -> str:
        if self.public_base_url:
            return self.public_base_url.rstrip("/")
        # Bound to every interface: reach it (and let the simulator call back) through loopback.
        host = _WILDCARD_HOSTS.get(self.host, self.host)
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    @property
    def mount_simulator(self) -> bool:
        return (not self.production) if self.simulator_enabled is None else self.simulator_enabled

    @property
    def resolved_simulator_url(self) -> str | None:
        if self.simulator_url:
            return self.simulator_url.rstrip("/")
        return f"{self.resolved_public_base_url}/simulator" if self.mount_simulator else None

    @property
    def should_migrate_on_start(self) -> bool:
        return (not self.production) if self.migrate_on_start is None else self.migrate_on_start

    @property
    def json_logs(self) -> bool:
        return self.production if self.log_json is None else self.log_json

    @property
    def backoff_steps(self) -> tuple[float, ...]:
        return _seconds_steps(self.reconcile_backoff, "MPESA_BRIDGE_RECONCILE_BACKOFF")

    @property
    def payout_backoff_steps(self) -> tuple[float, ...]:
        return _seconds_steps(self.payout_query_backoff, "MPESA_BRIDGE_PAYOUT_QUERY_BACKOFF")

    @property
    def after_expiry_backoff_steps(self) -> tuple[float, ...]:
        return _seconds_steps(self.reconcile_after_expiry_backoff, "MPESA_BRIDGE_RECONCILE_AFTER_EXPIRY_BACKOFF")

    def initiator_certificates(self) -> dict[str, bytes]:
        """The certificates set per Daraja environment (its value -> PEM or DER bytes), read now so a
        missing file is a start-up error, never found mid-payout."""
        out = {}
        for environment in ("simulator", "sandbox", "production"):
            given = getattr(self, f"daraja_certificate_{environment}")
            if not given:
                continue
            if "-----BEGIN" in given:
                out[environment] = given.encode("ascii", errors="replace")
                continue
            try:
                out[environment] = Path(given).expanduser().read_bytes()
            except OSError as exc:
                raise ConfigError(
                    f"MPESA_BRIDGE_DARAJA_CERTIFICATE_{environment.upper()}: cannot read {given}: {exc.strerror}"
                ) from exc
        return out

    def _old_keys(self) -> list[bytes]:
        if self.old_master_keys is None:
            return []
        try:
            return [parse_master_key(k) for k in _split(self.old_master_keys.get_secret_value())]
        except MasterKeyError as exc:
            raise ConfigError(f"MPESA_BRIDGE_OLD_MASTER_KEYS is unusable: {exc}") from exc

    @property
    def callback_allowlist_on(self) -> bool:
        return self.production if self.callback_allowlist is None else self.callback_allowlist

    @property
    def webhook_test_loopback_on(self) -> bool:
        # Off in production: a test key must not reach (nor read) the host's own services.
        return (not self.production) if self.webhook_test_allow_loopback is None else self.webhook_test_allow_loopback

    @property
    def callback_networks(self) -> list[str]:
        return _split(self.callback_allowed_ips)

    @property
    def proxy_networks(self) -> list[str]:
        return _split(self.trusted_proxies)

    @property
    def realtime_origins(self) -> list[str]:
        return _split(self.realtime_cors_origins)

    def master_keys(self) -> list[bytes]:
        """The master key, or in development one generated once and kept in the data directory."""
        if self.master_key is not None:
            try:
                return [parse_master_key(self.master_key.get_secret_value()), *self._old_keys()]
            except MasterKeyError as exc:
                raise ConfigError(f"MPESA_BRIDGE_MASTER_KEY is unusable: {exc}") from exc
        if self.production:  # pragma: no cover - the validator already refused this
            raise ConfigError("MPESA_BRIDGE_MASTER_KEY is required in production")
        path = self.data_dir / _DEV_MASTER_KEY_FILE
        if not path.exists():
            _create_private_file(path, generate_master_key() + "\n")
        try:
            return [parse_master_key(path.read_text())]
        except MasterKeyError as exc:
            raise ConfigError(
                f"{path} is not a usable master key ({exc}); delete it or set MPESA_BRIDGE_MASTER_KEY"
            ) from exc


def _seconds_steps(text: str, variable: str) -> tuple[float, ...]:
    try:
        steps = tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError as exc:
        raise ConfigError(f"{variable} must be comma-separated seconds") from exc
    if not steps or min(steps) <= 0 or not all(math.isfinite(step) for step in steps):
        raise ConfigError(f"{variable} must list positive seconds")
    return steps


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _create_private_file(path: Path, text: str) -> None:
    """Create `path` (mode 0600 from the first byte) unless it exists: the first writer wins.

    The text goes to a private temporary file that is then hard-linked into place, so a process
    starting at the same moment (a server and a worker) never reads a half-written file nor
    replaces a key that already sealed secrets.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # the data directory: see files.py
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another process created it first: use theirs
        except OSError:  # a filesystem without hard links: exclusive create, still never a replace
            with contextlib.suppress(FileExistsError):
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    handle.write(text)
    finally:
        tmp.unlink(missing_ok=True)


def _describe(exc: ValidationError) -> str:
    """One line per problem, naming the variable; never the input values (they may be secrets)."""
    lines = []
    for error in exc.errors(include_url=False, include_input=False):
        message = str(error["msg"]).removeprefix("Value error, ")
        loc = [str(part) for part in error["loc"]]
        lines.append(f"MPESA_BRIDGE_{loc[0].upper()}: {message}" if loc else message)
    return "; ".join(lines)


def load_settings(**overrides: object) -> Settings:
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from exc
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
