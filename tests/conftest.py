"""Shared test set-up: Qt runs offscreen; tests start from the repository root."""

from __future__ import annotations

import os
import sys
from pathlib import Path

# fixtures shared by the test modules: postgres_url (a throwaway PostgreSQL server)
pytest_plugins = ["tests.postgres_server"]

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
