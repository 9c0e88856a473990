"""The test PostgreSQL server (tests/postgres_server.py) takes SQLAlchemy connections."""

from __future__ import annotations

import sqlalchemy
from sqlalchemy import text


def test_postgres_server_stores_rows_and_shares_them_between_connections(
    postgres_url: str,
) -> None:
    assert postgres_url.startswith("postgresql+psycopg://")
    engine = sqlalchemy.create_engine(postgres_url)
    try:
        with engine.begin() as connection:
            connection.execute(text("CREATE TABLE trial (id INTEGER PRIMARY KEY, value TEXT)"))
            connection.execute(text("INSERT INTO trial VALUES (1, 'first')"))
        with engine.connect() as connection:
            assert connection.execute(text("SELECT id, value FROM trial")).all() == [(1, "first")]

        # two independent connections see each other's committed rows
        with engine.connect() as writer, engine.connect() as reader:
            writer.execute(text("INSERT INTO trial VALUES (2, 'second')"))
            writer.commit()
            assert reader.execute(text("SELECT value FROM trial WHERE id = 2")).scalar() == "second"
            reader.rollback()
            reader.execute(text("INSERT INTO trial VALUES (3, 'third')"))
            reader.commit()
            assert writer.execute(text("SELECT count(*) FROM trial")).scalar() == 3
    finally:
        engine.dispose()
