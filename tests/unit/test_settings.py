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
