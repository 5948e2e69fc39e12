"""Settings, read once from the environment (prefix ``STAGEGATE_``) and passed down."""

from __future__ import annotations

import contextlib
import re
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="STAGEGATE_", extra="ignore")

    database_url: str = "sqlite:///./stagegate.db"
    """``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db`` or
    ``postgresql://user:password@host:5432/dbname``."""
    postgres_schema: str = Field(default="public", pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    postgres_pool_size: int = Field(default=5, ge=1, le=100)
    postgres_max_overflow: int = Field(default=10, ge=0, le=100)
    postgres_lock_timeout_seconds: int = Field(default=5, ge=1, le=600)
    """How long an append waits for the event table's lock before giving up."""
    snapshot_interval: int = Field(default=50, ge=2, le=100_000)
    """Take a snapshot of a use case every this many events, so loading stays flat."""
    projections: Literal["inline", "external"] = "inline"
    """``inline``: each server keeps the read models current itself. ``external`` (PostgreSQL):
    ``stagegate projections run`` workers do, and servers wait for them after a write."""
    webhooks: Literal["inline", "external"] = "inline"
    """``inline``: each server delivers webhooks itself. ``external``: only
    ``stagegate webhooks run`` workers do (several may run side by side on PostgreSQL)."""
    webhook_allow_http: bool = False
    """Allow plain ``http`` webhook URLs (otherwise ``https`` only)."""
    webhook_allowed_networks: list[IPv4Network | IPv6Network] = Field(default_factory=list)
    """Networks (JSON list of CIDRs) webhooks may be sent into although they are not public:
    loopback, private, link-local, ... (``infra.webhook_destinations``); empty: none."""
    webhook_source: str = Field(default="stagegate", min_length=1, max_length=512, pattern=r"^\S+$")
    """The CloudEvents ``source`` of every webhook sent: which stagegate announced it (a URI
    reference, e.g. ``https://stagegate.example.com`` where receivers hear from several)."""
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    workers: int = Field(default=1, ge=1, le=64)
    """Server processes behind the one port (PostgreSQL only). One Python process uses one
    core for its requests; on a machine with more, more processes serve more requests."""
    environment: Literal["production", "development"] = "production"
    """``development`` serves GraphiQL at /graphql; ``production`` does not."""
    cors_origins: list[str] = Field(default_factory=list)
    """Browser origins allowed to call the API (JSON list), e.g. ``["https://portal.example.com"]``."""
    graphql_max_depth: int = Field(default=12, ge=2, le=100)
    graphql_max_aliases: int = Field(default=30, ge=1, le=1000)
    graphql_introspection: bool | None = None
    """Answer introspection (``__schema``, ``__type``) and "Did you mean ..." suggestions;
    unset: on in ``development``, off in ``production``."""
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024, le=64 * 1024 * 1024)
    """Largest request body accepted on any route (413 past it)."""
    body_timeout_seconds: float = Field(default=30.0, gt=0, le=3600)
    """How long a request's body may take to arrive in full (408 past it)."""
    header_timeout_seconds: float = Field(default=10.0, gt=0, le=600)
    """How long a connection may take to send a request's head in full (closed past it)."""
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["text", "json"] = "text"
    """``text``: one human-readable line per record; ``json``: one JSON object per line (for
    a log collector), with each request's fields (``api.telemetry``) as keys of their own."""
    metrics: Literal["token", "address", "off"] = "token"
    """``token``: ``GET /metrics`` (Prometheus text format) on the API's port, for admin and
    auditor tokens; ``address``: on ``metrics_address`` only, without a token (for a listen
    address that only the monitoring network reaches); ``off``: not served, nothing counted."""
    metrics_address: str = "127.0.0.1:9464"
    """``host:port`` where ``metrics=address`` serves the page (9464: Prometheus exporters'
    customary port for an application's own metrics)."""

    @field_validator("database_url")
    @classmethod
    def _supported_url(cls, value: str) -> str:
        scheme = urlsplit(value).scheme
        if scheme not in ("sqlite", "postgresql", "postgres"):
            raise ValueError(
                f"unsupported database URL scheme '{scheme}'; use sqlite:///path/to/file.db "
                "or postgresql://user:password@host:5432/dbname"
            )
        if scheme == "sqlite" and not value.startswith("sqlite:///"):
            raise ValueError("a SQLite URL has three slashes: sqlite:///stagegate.db")
        url = urlsplit(value)
        if scheme != "sqlite":
            if url.query:
                # eventsourcing's pool takes host, port, user, password and database only;
                # libpq reads the rest from its environment (PGSSLMODE, PGSSLROOTCERT, ...).
                raise ValueError(
                    "query parameters are not supported in the PostgreSQL URL; set libpq's "
                    "environment variables instead (e.g. PGSSLMODE=require)"
                )
            url.port  # noqa: B018 - raises ValueError for a port that is not a number
        return value

    @field_validator("webhook_allowed_networks", mode="before")
    @classmethod
    def _networks(cls, value: object) -> object:
        if not isinstance(value, list):
            return value  # pydantic names the type it wants
        networks = []
        for item in value:
            try:
                networks.append(ip_network(str(item)))
            except ValueError as error:
                hint = ""
                with contextlib.suppress(ValueError):
                    hint = f" (the network holding it: {ip_network(str(item), strict=False)})"
                raise ValueError(
                    f"'{item}' is not a network in CIDR notation: {error}{hint}"
                ) from None
        return networks

    @field_validator("metrics_address")
    @classmethod
    def _host_and_port(cls, value: str) -> str:
        host, _, port = value.rpartition(":")
        if not re.fullmatch(r"\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+", host) or not port.isdigit():
            raise ValueError(f"'{value}' is not host:port, e.g. 127.0.0.1:9464 or [::1]:9464")
        if not 1 <= int(port) <= 65535:
            raise ValueError(f"port {port} is out of range (1-65535)")
        return value

    @model_validator(mode="after")
    def _external_projections_need_postgres(self) -> Settings:
        # Configuration, not SQL dialect: which store was configured decides what may run.
        if self.projections == "external" and not self.is_postgres:
            raise ValueError(
                "projections=external needs PostgreSQL: on SQLite the server keeps its read "
                "models current itself (projections=inline)"
            )
        return self

    @property
    def introspection(self) -> bool:
        """Whether GraphQL introspection and suggestions are on (see ``graphql_introspection``)."""
        if self.graphql_introspection is None:
            return self.environment == "development"
        return self.graphql_introspection

    @property
    def is_postgres(self) -> bool:
        """Whether PostgreSQL was configured: for choosing the store to build and validating
        the settings around it; SQL that differs by store goes through ``infra.database``."""
        return urlsplit(self.database_url).scheme in ("postgresql", "postgres")

    @property
    def sqlite_path(self) -> Path:
        return Path(self.database_url.removeprefix("sqlite:///"))

    def postgres_params(self) -> dict[str, str]:
        """Connection parameters of a PostgreSQL URL, password included."""
        url = urlsplit(self.database_url)
        return {
            "host": url.hostname or "localhost",
            "port": str(url.port or 5432),
            "user": unquote(url.username or "postgres"),
            "password": unquote(url.password or ""),
            "dbname": url.path.lstrip("/") or "postgres",
        }

    def redacted_database_url(self) -> str:
        """The database URL without its password, for logs and banners."""
        url = urlsplit(self.database_url)
        if url.password is None:
            return self.database_url
        netloc = url.netloc.replace(f":{url.password}@", ":***@")
        return url._replace(netloc=netloc).geturl()
