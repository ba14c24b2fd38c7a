"""``Row``: one result line of a report, whichever command produced it.

A run makes one row per (scenario, target, interpreter); a fuzz campaign one per finding
(or one ``same`` row when it found nothing); handler fuzzing one per defect. Every report
format is rendered from the rows as written into ``report.json`` (``Row.to_json``), and
``Row.from_json`` reads them back (``merge``, ``report``).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from harness.compare import Verdict


def family_of(scenario: str) -> str:
    """The family of a scenario id: everything before its last part, as the catalog says
    (``dependents/logging/config`` for ``dependents/logging/config/dict_json``)."""
    return scenario.rsplit("/", 1)[0] if "/" in scenario else scenario


@dataclasses.dataclass
class Finding:
    """What a fuzzer found: the exact input, readable, and the command that replays it.

    ``data`` is the bytes as Python would write them (``repr`` without the ``b``), so the
    HTML and Markdown reports can show them as text; ``schedule`` says how they were sent
    (pieces, pauses, how the client ended); ``replay`` is ``python -m harness replay FILE``.
    """

    data: str
    replay: str
    schedule: str = ""
    kind: str = ""  # handler fuzzing: exception, crash, hang, fd-leak, ...
    file: str = ""

    def to_json(self) -> dict[str, Any]:
        """The finding as written into a row."""
        return dataclasses.asdict(self)


@dataclasses.dataclass
class Row:
    """One result: what one target did in one scenario (or one fuzzed case).

    ``interpreter`` is the label of the interpreter column it belongs to: the name given to
    ``run --python`` in a grid run (``3.12``, ``pypy3``), else the server's Python version
    (``3.11.7``). ``expected`` is filled in by ``--expect`` (the entry that covers the row);
    ``cause`` by the cause grouping (the key of the row's group). Both are set by
    ``finish``, never by callers.
    """

    scenario: str
    target: str
    verdict: str
    description: str = ""
    duration_s: float = 0.0
    diff: str = ""
    reason: str = ""
    notes: list[str] = dataclasses.field(default_factory=list)
    differing_keys: list[str] = dataclasses.field(default_factory=list)
    violations: list[str] = dataclasses.field(default_factory=list)
    reproducer: str = ""
    python: list[int] = dataclasses.field(default_factory=list)
    interpreter: str = ""
    observation: dict[str, Any] | None = None
    finding: Finding | None = None
    expected: dict[str, Any] | None = None
    cause: str = ""

    def __post_init__(self) -> None:
        # Fails early, in the caller, on a word that is not a verdict.
        self.verdict = Verdict(self.verdict).value
        if not self.interpreter and self.python:
            self.interpreter = ".".join(str(part) for part in self.python)

    @property
    def family(self) -> str:
        """The scenario's family (``http/headers``, ``fuzz/http``)."""
        return family_of(self.scenario)

    @property
    def key(self) -> tuple[str, str, str]:
        """What identifies a row in a report: (scenario, target, interpreter)."""
        return (self.scenario, self.target, self.interpreter)

    @property
    def acceptable(self) -> bool:
        """Whether the verdict alone leaves the exit status 0 (``same``, ``explained``)."""
        return Verdict(self.verdict).acceptable

    @property
    def problem(self) -> bool:
        """A verdict that is not acceptable and that no ``--expect`` entry expected."""
        return not self.acceptable and not self.expected

    @classmethod
    def from_result(cls, result: Any, description: str = "", interpreter: str = "") -> Row:
        """A row from an engine ``Result`` (``harness.engine.Result``)."""
        return cls(
            scenario=result.scenario,
            target=result.target,
            verdict=str(getattr(result.verdict, "value", result.verdict)),
            description=description,
            duration_s=result.duration_s,
            diff=result.diff,
            reason=result.reason,
            notes=list(getattr(result, "notes", None) or []),
            differing_keys=list(result.differing_keys),
            violations=list(result.violations),
            reproducer=result.reproducer,
            python=list(result.python),
            interpreter=interpreter,
            observation=result.observation,
        )

    def to_json(self) -> dict[str, Any]:
        """The row as written into ``report.json`` (schema 2)."""
        data = dataclasses.asdict(self)
        data["family"] = self.family
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Row:
        """A row read back from ``report.json`` (schema 1 rows lack the newer keys)."""
        names = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in names}
        if values.get("finding"):
            values["finding"] = Finding(**values["finding"])
        return cls(**values)
