"""What the api families (``socketserver/api/...``, ``http/api/...``) share.

One scenario per public class and one for the module. Each runs the probe
(``scenarios/handlers/api_probe.py``) in the server process, on top of the target's
modules, and records one fact per name, so a difference reads as the class and the name a
target adds (``<absent>`` on the baseline's side), lacks (``<absent>`` on the target's) or
changes.

Where CPython's own API changed between versions, ``_api_versions.json`` (written by
``tools/api_versions.py`` from the probe run under each CPython's stdlib) holds each
changed fact's value per version. It gives

- a ``Known`` per group of facts that changed the same way, which explains a difference
  only when the target's and the baseline's Pythons are on different sides of the change
  (``Known.between``); on one version the same difference stays ``differs``;
- a check of the target against the table for its own version: a fact the table lists
  whose value is not the one that CPython version has adds the fact ``<name>, where
  CPython X.Y has``, which no version difference explains (so a 3.12 target with a wrong
  ``allow_reuse_port`` is not excused by a 3.9 baseline that has none).
"""

from __future__ import annotations

import glob
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from harness.scenario import Known, Run, ServerSpec, scenario

TABLE_PATH = Path(__file__).with_name("_api_versions.json")
PROBE = "scenarios.handlers.api_probe"
#: The fact unit of the module scenario (the others are class names).
MODULE = "module"
#: A server only because every run builds one; the probe does not touch it.
SERVER = ServerSpec("TCPServer", handler="scenarios.handlers.stream:Echo", instrument=False)
#: How many names a version ``Known``'s reason lists before it says how many more.
_REASON_NAMES = 6


def load_table(path: Path = TABLE_PATH) -> dict[str, Any]:
    """The version table: ``{"pythons", "classes", "changes"}`` (see tools/api_versions.py)."""
    return json.loads(path.read_text())


TABLE = load_table()


def minor(version: Iterable[int]) -> str:
    """``"3.11"`` for ``(3, 11, 7)``."""
    major, minor_, *_ = tuple(version)
    return f"{major}.{minor_}"


def _ordered(versions: Iterable[str]) -> list[str]:
    return sorted(versions, key=lambda v: tuple(int(p) for p in v.split(".")))


def changes(values: dict[str, Any]) -> list[str]:
    """What happened to one fact from version to version: ``["3.11 added"]``."""
    versions = _ordered(values)
    found = []
    for before, after in zip(versions, versions[1:]):
        old, new = values[before], values[after]
        if old != new:
            what = "added" if old is None else "removed" if new is None else "changed"
            found.append(f"{after} {what}")
    return found


def _partition(values: dict[str, Any]) -> tuple[int, ...]:
    """Each version's value as the index of its first occurrence (equal values, equal index)."""
    distinct: list[str] = []
    blocks = []
    for version in _ordered(values):
        text = json.dumps(values[version], sort_keys=True)
        if text not in distinct:
            distinct.append(text)
        blocks.append(distinct.index(text))
    return tuple(blocks)


def _names(unit: str, keys: list[str]) -> str:
    if unit != MODULE and unit in keys:
        return f"{unit} (the class and its names)"
    shown = ", ".join(keys[:_REASON_NAMES])
    more = len(keys) - _REASON_NAMES
    return f"{shown} and {more} more" if more > 0 else shown


def version_knowns(table: dict[str, Any], module: str, unit: str) -> list[Known]:
    """The ``Known`` differences between CPython versions for one scenario's facts.

    Facts that changed at the same versions in the same way share one ``Known``; it covers
    their keys for any target, only between two versions the table tells apart.
    """
    unit_changes: dict[str, dict[str, Any]] = table["changes"].get(module, {}).get(unit, {})
    groups: dict[tuple[Any, ...], list[str]] = {}
    for key, values in sorted(unit_changes.items()):
        signature = (tuple(_ordered(values)), _partition(values), tuple(changes(values)))
        groups.setdefault(signature, []).append(key)
    knowns = []
    for (versions, partition, what), keys in groups.items():
        block = dict(zip(versions, partition))

        def between(target: tuple[int, ...], baseline: tuple[int, ...], block=block) -> bool:
            one, other = minor(target), minor(baseline)
            return one in block and other in block and block[one] != block[other]

        knowns.append(
            Known(
                keys=tuple("facts." + glob.escape(key) for key in keys),
                reason=f"CPython {', '.join(what)}: {_names(unit, keys)}",
                issue="CPython API by version, tools/api_versions.py",
                targets=(),
                between=between,
            )
        )
    return knowns


def record_facts(run: Run, facts: dict[str, Any], module: str, unit: str) -> None:
    """Record the probe's facts, and where they are not what the table says the running
    CPython version has, one more fact per such name (``<name>, where CPython X.Y has``)."""
    for key in sorted(facts):
        run.record(key, facts[key])
    version = minor(run.python) if run.python else ""
    unit_changes = TABLE["changes"].get(module, {}).get(unit, {})
    for key, values in sorted(unit_changes.items()):
        if version in values and facts.get(key) != values[version]:
            expected = values[version]
            run.record(
                f"{key}, where CPython {version} has", "<absent>" if expected is None else expected
            )


def _probe_call(module: str, unit: str) -> str:
    if unit == MODULE:
        return f"probe_module({module!r})"
    return f"probe_class({module!r}, {unit!r})"


def register_family(area: str, module: str) -> list[str]:
    """Register ``<area>/api/<class>`` for every public class the table knows of in
    ``module`` (any CPython version), and ``<area>/api/module``; returns their ids."""
    ids = []
    for unit in [*TABLE["classes"][module], MODULE]:
        sid = f"{area}/api/{unit.lower()}"
        if unit == MODULE:
            doc = (
                f"The public names of {module}, each with its kind (class, function and "
                "signature, module, value), and the entries of its __all__."
            )
        else:
            doc = (
                f"The namespace of {module}.{unit}: MRO, every name defined or inherited "
                "(private and dunder included, name-mangled left out), public signatures "
                "and class attribute values."
            )

        async def body(run: Run, unit: str = unit) -> None:
            outcome = await run.exec(
                f"result = __import__({PROBE!r}, fromlist=['x']).{_probe_call(module, unit)}",
                timeout=15.0,
            )
            if not outcome.returned:
                run.record("probe", dict(outcome))
                return
            record_facts(run, outcome["returned"], module, unit)

        scenario(
            sid,
            server=SERVER,
            description=doc,
            known=version_knowns(TABLE, module, unit),
            tags=("api",),
        )(body)
        ids.append(sid)
    return ids
