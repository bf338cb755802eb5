"""Real servers for end-to-end tests (the helpers live in bench/, which the benchmarks share)."""

from __future__ import annotations

from bench.server import ROOT, daphne_server, free_port, manage

__all__ = ["ROOT", "daphne_server", "free_port", "manage"]
