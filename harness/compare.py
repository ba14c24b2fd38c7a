"""Compare two observations and decide a verdict.

Verdicts, as data (``VERDICTS``): what each means and whether it makes a run exit 1.
``decide`` is the one place a verdict is made: the engine, the fuzzers and the mutation
tool all give it what they observed and take its ``Decision``.
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

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


class Verdict(str, enum.Enum):
    """A verdict about one target in one scenario (its value is the word in reports)."""

    SAME = "same"
    EXPLAINED = "explained"
    DIFFERS = "differs"
    FAILS = "fails"
    HANG = "hang"
    FLAKY = "flaky"
    ERROR = "error"

    @property
    def acceptable(self) -> bool:
        """Whether it leaves the exit status 0."""
        return VERDICTS[self.value][1]


class Observation(Protocol):
    """What ``decide`` needs to know of one side's run (``engine.Observed`` is one).

    ``status`` is ``completed``, ``hang`` (the scenario's deadline passed), ``nostart``
    (the target never became ready: it failed to import, exited or hung before ``ready``;
    ``error`` says what happened) or ``error`` (the harness or the scenario failed).
    """

    status: str
    observation: dict[str, Any]
    violations: list[str]
    error: str
    python: tuple[int, ...]


#: One run of both sides: (baseline, target).
Pair = tuple[Observation, Observation]


@dataclasses.dataclass(frozen=True)
class Decision:
    """A verdict with what it rests on.

    ``needs_rerun`` is set on a difference that has not been rerun yet: the caller runs
    both sides again and asks once more with the reruns; only then is ``differs`` final.
    """

    verdict: Verdict
    reason: str = ""
    keys: tuple[str, ...] = ()
    known: tuple[Known, ...] = ()
    needs_rerun: bool = False
    #: which run the diff should be drawn from: the first, or the rerun that confirmed it
    diff_from: Pair | None = None


def construct_failure(side: Observation) -> str | None:
    """What kept a side from starting, or None when it started.

    ``nostart`` is a target that never got as far as building a server; a ``construct``
    observation is a server whose constructor raised (``server_bind`` failed, say).
    """
    if side.status == "nostart":
        return side.error
    return side.observation.get("construct") if side.status == "completed" else None


def decide(
    first: Pair,
    reruns: Sequence[Pair] = (),
    *,
    known: Iterable[Known] = (),
    labels: Iterable[str] = (),
    deadline: float | None = None,
    subject: Any = None,
    differences: Callable[[dict[str, Any], dict[str, Any]], list[str]] | None = None,
) -> Decision:
    """The verdict about the target of ``first``, given the reruns made to confirm it.

    Pure: it looks only at what it is given. Faults of the target are verdicts of the
    target (it hangs, breaks an invariant, does not start where the baseline does); only
    a failure of the harness or of the scenario itself is ``error``. A difference is
    ``differs`` only once reruns of both sides repeated it, every rerun that could
    compare; reruns that could not (one side hung or erred) never confirm it. A broken
    invariant given reruns must break again on each of them, or it is ``flaky``.

    ``subject`` is what was run, for a ``Known`` that recognises a difference by its
    shape (a fuzz case); ``differences`` finds the differing keys of two observations
    (default ``differing_keys``; the fuzzer's allows for a reset's truncation).
    """
    differ = differences or differing_keys
    base, got = first
    known = tuple(known)
    labels = frozenset(labels)
    if base.status == "nostart":
        # The baseline's own row says so; the engine compares nothing against it.
        return Decision(Verdict.ERROR, f"not compared: the baseline does not start: {base.error}")
    if got.status == "error" or base.status == "error":
        side = "target" if got.status == "error" else "baseline"
        return Decision(Verdict.ERROR, f"{side}: {(got if side == 'target' else base).error}")
    if got.status == "nostart" and base.status != "nostart":
        return Decision(Verdict.FAILS, f"target does not start: {got.error}")
    if got.status == "hang":
        limit = f" within {deadline:g} s" if deadline else ""
        return Decision(Verdict.HANG, f"did not finish{limit}")
    if got.violations:
        failed = "; ".join(got.violations)
        broke = [bool(pair[1].violations) for pair in reruns if _comparable(pair, base.status)]
        if broke and not all(broke):
            return Decision(Verdict.FLAKY, f"{failed} ({_repeated(broke)})", diff_from=first)
        return Decision(Verdict.FAILS, failed, diff_from=first)
    failed = construct_failure(got)
    if failed and not construct_failure(base):
        return Decision(Verdict.FAILS, f"target does not start: {failed}", diff_from=first)
    keys = differ(base.observation, got.observation)
    if not keys:
        return Decision(Verdict.SAME)

    def explaining(pair: Pair, keys: list[str]) -> list[Known] | None:
        observations = (pair[0].observation, pair[1].observation)
        version, baseline = pair[1].python or pair[0].python, pair[0].python or None
        return explain(
            keys, known, labels, version, baseline, subject=subject, observations=observations
        )

    explained = explaining(first, keys)
    if explained is not None:
        reason = "; ".join(k.describe() for k in explained)
        return Decision(Verdict.EXPLAINED, reason, tuple(keys), tuple(explained), diff_from=first)
    reason = "the baseline did not finish; the target did" if base.status == "hang" else ""
    if not reruns:
        return Decision(Verdict.DIFFERS, reason, tuple(keys), needs_rerun=True, diff_from=first)
    compared = [pair for pair in reruns if _comparable(pair, base.status)]
    repeated = []
    for pair in compared:
        again = differ(pair[0].observation, pair[1].observation)
        repeated.append(bool(again) and explaining(pair, again) is None)
    if compared and all(repeated):
        return Decision(Verdict.DIFFERS, reason, tuple(keys), diff_from=first)
    if compared:
        return Decision(
            Verdict.FLAKY, f"the difference {_repeated(repeated)}", tuple(keys), diff_from=first
        )
    # No rerun could compare: what kept them from it is the verdict, never "differs".
    rerun_base, rerun_got = reruns[-1]
    if "error" in (rerun_got.status, rerun_base.status):
        side = rerun_got if rerun_got.status == "error" else rerun_base
        return Decision(
            Verdict.ERROR, f"the difference could not be confirmed: rerun failed: {side.error}"
        )
    if rerun_got.status in ("hang", "nostart"):
        what = "hung" if rerun_got.status == "hang" else f"did not start ({rerun_got.error})"
        verdict = Verdict.HANG if rerun_got.status == "hang" else Verdict.FAILS
        return Decision(verdict, f"the difference could not be confirmed: the rerun {what}")
    return Decision(
        Verdict.FLAKY,
        "the difference could not be confirmed: the baseline's rerun did not finish",
        tuple(keys),
        diff_from=first,
    )


def _repeated(repeats: list[bool]) -> str:
    """How often a difference or failure repeated on the reruns that could tell."""
    if not any(repeats):
        return "did not repeat on rerun"
    return f"repeated {sum(repeats)} of {len(repeats)} times on rerun"


def _comparable(pair: Pair, first_base_status: str) -> bool:
    """Whether a rerun can confirm or refute: the target finished, the baseline as before."""
    base, got = pair
    return got.status == "completed" and base.status == first_base_status


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
    *,
    subject: Any = None,
    observations: tuple[dict[str, Any], dict[str, Any]] | None = None,
) -> list[Known] | None:
    """The known differences covering every key, or None if some key is unexplained.

    ``version`` is the target's Python version, ``baseline`` the baseline's (for a
    ``Known`` with ``between``). ``subject`` (what was run: a fuzz case) and
    ``observations`` (the baseline's, the target's) are for a ``Known`` that recognises
    a difference by its shape (``Known.matches``).
    """
    applying = [k for k in known if k.applies_to(target, version, baseline)]
    return covering(keys, applying, subject, observations)


def covering(
    keys: Iterable[str],
    known: Iterable[Known],
    subject: Any = None,
    observations: tuple[dict[str, Any], dict[str, Any]] | None = None,
) -> list[Known] | None:
    """Of ``known`` (those that apply to the target already), the ones covering every
    key, or None if some key is unexplained (see ``explain``)."""
    keys = list(keys)
    recognising = [k for k in known if k.recognises(subject, observations, keys)]
    used: list[Known] = []
    for key in keys:
        covered = [k for k in recognising if k.covers_key(key)]
        if not covered:
            return None
        for k in covered:
            if k not in used:
                used.append(k)
    return used
