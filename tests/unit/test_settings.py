"""Settings refuse what they cannot honour, naming the problem."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from infra.settings import Settings


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("mysql://db/stagegate", "unsupported database URL scheme 'mysql'"),
        ("sqlite://stagegate.db", "three slashes"),
        ("postgresql://u@db:5432/sg?sslmode=require", "PGSSLMODE"),
        ("postgresql://u@db:54x2/sg", "Port could not be cast"),
    ],
)
def test_unusable_database_urls_are_refused(url: str, complaint: str) -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(database_url=url)
    assert complaint in str(refused.value)


def test_postgres_urls_give_their_parts_and_hide_the_password() -> None:
    settings = Settings(database_url="postgresql://sg:s%40cret@db.example.com:6543/stagegate")
    assert settings.is_postgres
    assert settings.postgres_params() == {
        "host": "db.example.com",
        "port": "6543",
        "user": "sg",
        "password": "s@cret",
        "dbname": "stagegate",
    }
    assert "cret" not in settings.redacted_database_url()
    assert settings.redacted_database_url() == "postgresql://sg:***@db.example.com:6543/stagegate"


def test_the_default_is_an_sqlite_file_in_the_working_directory() -> None:
    settings = Settings()
    assert not settings.is_postgres
    assert str(settings.sqlite_path) == "stagegate.db"


def test_a_schema_name_that_is_not_an_identifier_is_refused() -> None:
    with pytest.raises(ValidationError):
        Settings(postgres_schema='x"; drop table stored_events; --')


def test_webhook_destinations_default_to_https_and_public_addresses_only() -> None:
    settings = Settings()
    assert settings.webhook_allow_http is False
    assert settings.webhook_allowed_networks == []
    assert settings.webhook_source == "stagegate"


@pytest.mark.parametrize(
    ("networks", "complaint"),
    [
        (["10.0.0.5/8"], "has host bits set (the network holding it: 10.0.0.0/8)"),
        (["intranet"], "'intranet' is not a network in CIDR notation"),
    ],
)
def test_allowed_webhook_networks_must_be_networks(networks: list[str], complaint: str) -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(webhook_allowed_networks=networks)
    assert complaint in str(refused.value)
    assert "webhook_allowed_networks" in str(refused.value)


def test_allowed_webhook_networks_are_read_as_a_json_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STAGEGATE_WEBHOOK_ALLOWED_NETWORKS", '["10.20.0.0/16", "fd00::/8"]')
    monkeypatch.setenv("STAGEGATE_WEBHOOK_ALLOW_HTTP", "true")
    settings = Settings()
    assert [str(n) for n in settings.webhook_allowed_networks] == ["10.20.0.0/16", "fd00::/8"]
    assert settings.webhook_allow_http is True
