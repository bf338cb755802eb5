"""Fixtures shared by the accounts tests."""

from __future__ import annotations

import pytest
from django.db import connection


@pytest.fixture
def postgres_only():
    if connection.vendor != "postgresql":
        reason = "needs PostgreSQL for real concurrency (runs in the DATABASE_URL pass)"
        print(f"SKIP: {reason}")
        pytest.skip(reason)
