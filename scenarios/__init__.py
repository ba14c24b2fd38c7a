"""The scenario catalog: one module per family, handlers in ``scenarios.handlers``.

Scenario modules run in the harness (Python 3.11+); ``scenarios.handlers`` runs inside the
server process and stays stdlib-only and Python 3.9-compatible. Importing
``scenarios.handlers`` imports this package first, so this module imports nothing of the
harness at import time (the server process has no trio).
"""

import fnmatch
import importlib
import pkgutil


def load_catalog():  # -> dict[str, harness.scenario.Scenario]
    """Import every catalog module (registering its scenarios); the registry by id."""
    from harness.scenario import REGISTRY

    for module in pkgutil.iter_modules(__path__):
        if module.name != "handlers" and not module.name.startswith("_"):
            importlib.import_module(f"{__name__}.{module.name}")
    return REGISTRY


def select(patterns=()):  # -> list[harness.scenario.Scenario]
    """Scenarios whose id matches any glob (all when there are none), in id order."""
    catalog = load_catalog()
    patterns = list(patterns)
    chosen = [
        s
        for sid, s in sorted(catalog.items())
        if not patterns or any(fnmatch.fnmatchcase(sid, p) for p in patterns)
    ]
    return chosen
