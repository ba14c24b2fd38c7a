"""Compare two observations and decide a verdict.

Verdicts, as data (``VERDICTS``): what each means and whether it makes a run exit 1.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable
from typing import Any

from harness.scenario import Known

#: verdict -> (meaning, acceptable). Acceptable verdicts leave the exit status 0.
VERDICTS: dict[str, tuple[str, bool]] = {
    "same": ("the target did what the baseline did", True),
    "explained": ("differs only where a known, intended difference says it may", True),
    "differs": ("the target did something else than the baseline, on two runs", False),
    "fails": ("an invariant of the scenario broke on this target", False),
    "hang": ("the scenario did not finish within its deadline on this target", False),
    "flaky": ("a difference that did not repeat on rerun", False),
    "error": ("the harness itself or the scenario failed; not the target's fault", False),
}


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted keys to leaf values: ``{"facts": {"a": 1}}`` -> ``{"facts.a": 1}``.

    Only the observation itself and its ``facts`` are descended into: a fact, the event
    counts or the stderr text each show as one key with its whole value.
    """
    if isinstance(value, dict) and prefix in _DESCEND:
        # An empty dict here adds no key: ``facts: {}`` is just no facts.
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: value}


#: The parts of an observation compared key by key; anything else is compared whole.
_DESCEND = frozenset({"", "facts"})


def differing_keys(baseline: dict[str, Any], target: dict[str, Any]) -> list[str]:
    """The dotted keys whose values differ (or exist on one side only)."""
    flat_base, flat_target = flatten(baseline), flatten(target)
    keys = sorted(set(flat_base) | set(flat_target))
    return [k for k in keys if flat_base.get(k, _MISSING) != flat_target.get(k, _MISSING)]


_MISSING = object()


def render(value: Any) -> list[str]:
    """A value as stable, readable lines for a diff (strings keep their line breaks)."""
    if isinstance(value, str):
        return value.splitlines() or [""]
    text = json.dumps(value, indent=1, sort_keys=True, ensure_ascii=False)
    return text.splitlines()


def readable_diff(baseline: dict[str, Any], target: dict[str, Any], names: tuple[str, str]) -> str:
    """A unified diff, key by key, of what differs between two observations."""
    flat_base, flat_target = flatten(baseline), flatten(target)
    chunks = []
    for key in differing_keys(baseline, target):
        before = render(flat_base[key]) if key in flat_base else ["<absent>"]
        after = render(flat_target[key]) if key in flat_target else ["<absent>"]
        lines = list(
            difflib.unified_diff(
                before, after, f"{names[0]}: {key}", f"{names[1]}: {key}", n=2, lineterm=""
            )
        )
        chunks.append("\n".join(lines))
    return "\n".join(chunks)


def explain(
    keys: Iterable[str],
    known: Iterable[Known],
    target: str | Iterable[str],
    version: tuple[int, ...],
    baseline: tuple[int, ...] | None = None,
) -> list[Known] | None:
    """The known differences covering every key, or None if some key is unexplained.

    ``version`` is the target's Python version, ``baseline`` the baseline's (for a
    ``Known`` with ``between``).
    """
    used: list[Known] = []
    known = list(known)
    for key in keys:
        covering = [k for k in known if k.covers(key, target, version, baseline)]
        if not covering:
            return None
        for k in covering:
            if k not in used:
                used.append(k)
    return used
