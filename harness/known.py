"""Known differences built from the reference's own list of deviations.

``implementation.deviations.DEVIATIONS`` is the one place that says where the reference
deliberately differs from a CPython release and from which release on CPython behaves
the same. Scenarios name the issue; the versions come from there, so a scenario can never
disagree with the implementation about when a difference is expected.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from harness.errors import ScenarioError
from harness.scenario import Known
from implementation import deviations


def deviation(
    issue: str,
    keys: Iterable[str] = ("*",),
    *,
    reason: str | None = None,
    matches: Callable[[Any, dict[str, Any], dict[str, Any], list[str]], bool] | None = None,
) -> Known:
    """A ``Known`` for the reference's deviation ``issue`` (``gh-70765``).

    It explains differences at ``keys`` (globs over observation keys; default: any) on the
    ``reference`` target, only while the server's Python still has the old behaviour.
    ``reason`` says what a difference it explains shows (default: the first sentence of
    the deviation's summary); ``matches`` recognises such a difference by its shape (the
    fuzzer's explainers, ``harness.fuzz.explain``; see ``Known.matches``).
    """
    entry = next((e for e in deviations.DEVIATIONS if e["id"] == issue), None)
    if entry is None:
        known = ", ".join(e["id"] for e in deviations.DEVIATIONS)
        raise ScenarioError(f"deviation {issue!r} is not in implementation.deviations ({known})")
    if reason is None:
        reason = "the reference has the fix: " + entry["summary"].split(". ")[0].rstrip(".")
    return Known(
        keys=tuple(keys),
        reason=reason,
        issue=issue,
        targets=("reference",),
        applies=lambda version: entry in deviations.active_deviations(tuple(version)),
        matches=matches,
    )
