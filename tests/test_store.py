"""What one write does to PostgreSQL (collector/store.py): which failures are the
data's (row by row, dead letters) and which are PostgreSQL's (spool, retry).
Writes against a real PostgreSQL are in tests/test_writer.py."""

from __future__ import annotations

import asyncpg
from asyncpg.exceptions import _base

from collector.store import is_data_error


def test_data_errors_and_unavailability_are_told_apart() -> None:
    assert is_data_error(asyncpg.CheckViolationError("no"))
    assert is_data_error(asyncpg.NotNullViolationError("no"))
    assert is_data_error(asyncpg.UntranslatableCharacterError("no"))
    assert is_data_error(_base.DataError("invalid input for query argument"))
    assert not is_data_error(asyncpg.ReadOnlySQLTransactionError("standby"))
    assert not is_data_error(asyncpg.DiskFullError("full"))
    assert not is_data_error(asyncpg.InsufficientPrivilegeError("no"))
    assert not is_data_error(asyncpg.ConnectionDoesNotExistError("gone"))
    assert not is_data_error(ConnectionRefusedError())
