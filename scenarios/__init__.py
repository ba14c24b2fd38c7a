"""The scenario catalog: one module per family, handlers in ``scenarios.handlers``.

Scenario modules run in the harness (Python 3.11+); ``scenarios.handlers`` runs inside the
server process and stays stdlib-only and Python 3.9-compatible.
"""

from __future__ import annotations

import fnmatch
import importlib
import pkgutil
from collections.abc import Iterable

from harness.scenario import REGISTRY, Scenario


def load_catalog() -> dict[str, Scenario]:
    """Import every catalog module (registering its scenarios); the registry by id."""
    for module in pkgutil.iter_modules(__path__):
        if module.name != "handlers" and not module.name.startswith("_"):
            importlib.import_module(f"{__name__}.{module.name}")
    return REGISTRY


def select(patterns: Iterable[str] = ()) -> list[Scenario]:
    """Scenarios whose id matches any glob (all when there are none), in id order."""
    catalog = load_catalog()
    patterns = list(patterns)
    chosen = [
        s
        for sid, s in sorted(catalog.items())
        if not patterns or any(fnmatch.fnmatchcase(sid, p) for p in patterns)
    ]
    return chosen
