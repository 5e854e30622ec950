"""Where the checkout is: the tests run `eventms` and `alembic` from its root."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
