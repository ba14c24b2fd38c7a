"""Observation diffs and known-difference matching."""

from harness.compare import differing_keys, explain, flatten, readable_diff
from harness.scenario import Known


def test_flatten_descends_into_facts_only():
    obs = {"facts": {"a": {"x": 1}, "b": 2}, "events": {"e": 1}, "stderr": ""}
    assert flatten(obs) == {"facts.a": {"x": 1}, "facts.b": 2, "events": {"e": 1}, "stderr": ""}


def test_differing_keys_includes_keys_on_one_side_only():
    base = {"facts": {"a": 1, "b": 2}, "stderr": ""}
    got = {"facts": {"a": 1, "c": 3}, "stderr": "x"}
    assert differing_keys(base, got) == ["facts.b", "facts.c", "stderr"]
    assert differing_keys(base, base) == []


def test_readable_diff_names_key_and_both_sides():
    diff = readable_diff(
        {"facts": {"reply": "hello"}}, {"facts": {"reply": "help"}}, ("stdlib", "mine")
    )
    assert "--- stdlib: facts.reply" in diff
    assert "+++ mine: facts.reply" in diff
    assert "-hello" in diff and "+help" in diff


def test_explain_needs_every_key_covered_for_the_right_target_and_version():
    known = [
        Known(("facts.zombies*",), "reaps at once", issue="S17", applies=lambda v: v < (3, 99))
    ]
    assert explain(["facts.zombies_after"], known, "reference", (3, 11, 7)) == known
    assert explain(["facts.zombies_after", "stderr"], known, "reference", (3, 11, 7)) is None
    assert explain(["facts.zombies_after"], known, "mine", (3, 11, 7)) is None
    assert explain(["facts.zombies_after"], known, "reference", (3, 99, 0)) is None


def test_deviation_applies_only_where_the_servers_python_has_the_old_behaviour():
    import pytest

    from harness.errors import ScenarioError
    from harness.known import deviation

    known = deviation("gh-70765", keys=("facts.*",))
    assert known.issue == "gh-70765" and known.targets == ("reference",)
    assert known.covers("facts.reply", "reference", (3, 11, 7))
    assert not known.covers("facts.reply", "reference", (3, 13, 10))
    assert not known.covers("stderr", "reference", (3, 11, 7))
    assert not known.covers("facts.reply", "mine", (3, 11, 7))
    with pytest.raises(ScenarioError, match=r"not in implementation\.deviations"):
        deviation("gh-1")


def test_known_between_sees_both_versions_and_never_explains_one_version():
    added_in_311 = Known(
        ("facts.TCPServer.allow_reuse_port",),
        "CPython 3.11 added it",
        targets=(),
        between=lambda target, baseline: (target >= (3, 11)) != (baseline >= (3, 11)),
    )
    key = "facts.TCPServer.allow_reuse_port"
    # Across the change, either way round, for any target.
    assert explain([key], [added_in_311], "mine", (3, 12, 1), (3, 9, 18)) == [added_in_311]
    assert explain([key], [added_in_311], "stdlib", (3, 9, 18), (3, 12, 1)) == [added_in_311]
    # Not on one interpreter, not on two versions on the same side of the change, and not
    # when the baseline's version is unknown (an old caller, or a baseline that never ran).
    assert explain([key], [added_in_311], "mine", (3, 11, 7), (3, 11, 7)) is None
    assert explain([key], [added_in_311], "mine", (3, 12, 1), (3, 13, 0)) is None
    assert explain([key], [added_in_311], "mine", (3, 12, 1)) is None
    # Another key is not covered.
    assert explain(["facts.TCPServer.fileno"], [added_in_311], "mine", (3, 12), (3, 9)) is None


def test_known_without_between_ignores_the_baseline_version():
    known = Known(("stderr",), "old behaviour", applies=lambda v: v < (3, 12))
    assert known.covers("stderr", "reference", (3, 11, 7))
    assert known.covers("stderr", "reference", (3, 11, 7), (3, 13, 0))
    assert not known.covers("stderr", "reference", (3, 12, 1), (3, 11, 7))


# -- decide: every verdict path, on made-up observations ------------------------------

import dataclasses  # noqa: E402

from harness.compare import Verdict, decide  # noqa: E402


@dataclasses.dataclass
class Side:
    """A made-up run of one side, shaped like engine.Observed."""

    observation: dict = dataclasses.field(default_factory=lambda: {"facts": {"reply": "ok"}})
    status: str = "completed"
    violations: list = dataclasses.field(default_factory=list)
    error: str = ""
    python: tuple = (3, 11, 7)


def reply(text):
    return Side({"facts": {"reply": text}})


OK, OTHER = reply("ok"), reply("other")


def test_decide_same_when_nothing_differs():
    assert decide((OK, reply("ok"))).verdict is Verdict.SAME


def test_decide_a_difference_needs_a_rerun_before_it_is_differs():
    first = decide((OK, OTHER))
    assert first.verdict is Verdict.DIFFERS and first.needs_rerun
    assert first.keys == ("facts.reply",)
    confirmed = decide((OK, OTHER), [(reply("ok"), reply("other"))])
    assert confirmed.verdict is Verdict.DIFFERS and not confirmed.needs_rerun


def test_decide_a_difference_that_does_not_repeat_is_flaky():
    decision = decide((OK, OTHER), [(reply("ok"), reply("ok"))])
    assert decision.verdict is Verdict.FLAKY and "did not repeat" in decision.reason


def test_decide_reruns_that_cannot_compare_never_confirm_a_difference():
    hung = Side(status="hang")
    broken = Side(status="error", error="ScenarioError: oops")
    gone = Side(status="nostart", error="RuntimeError: boom")
    assert decide((OK, OTHER), [(OK, hung)]).verdict is Verdict.HANG
    assert decide((OK, OTHER), [(OK, hung), (OK, hung)]).verdict is Verdict.HANG
    assert decide((OK, OTHER), [(broken, OTHER)]).verdict is Verdict.ERROR
    assert decide((OK, OTHER), [(OK, broken)]).verdict is Verdict.ERROR
    assert decide((OK, OTHER), [(OK, gone)]).verdict is Verdict.FAILS
    assert decide((OK, OTHER), [(hung, OTHER)]).verdict is Verdict.FLAKY
    # one rerun that compares is enough
    assert decide((OK, OTHER), [(OK, hung), (OK, OTHER)]).verdict is Verdict.DIFFERS


def test_decide_explained_differences_need_no_rerun():
    known = [Known(("facts.reply",), "an intended change", issue="gh-1")]
    decision = decide((OK, OTHER), known=known, labels={"reference"})
    assert decision.verdict is Verdict.EXPLAINED and "gh-1" in decision.reason
    assert decide((OK, OTHER), known=known, labels={"mine"}).verdict is Verdict.DIFFERS
    # a rerun that differs only where the Known explains confirms nothing
    assert (
        decide((OK, OTHER), [(OK, OTHER)], known=known, labels={"mine"}).verdict is Verdict.DIFFERS
    )


def test_decide_target_faults_are_verdicts_of_the_target():
    hung = Side(status="hang")
    assert decide((OK, hung), deadline=20).verdict is Verdict.HANG
    assert "20 s" in decide((OK, hung), deadline=20).reason
    broke = Side(violations=["no zombie after server_close()"])
    decision = decide((OK, broke))
    assert decision.verdict is Verdict.FAILS and "zombie" in decision.reason
    gone = Side(status="nostart", error="RuntimeError: boom at import")
    decision = decide((OK, gone))
    assert decision.verdict is Verdict.FAILS
    assert decision.reason == "target does not start: RuntimeError: boom at import"
    unbound = Side({"construct": "OSError: [Errno 98] Address already in use", "facts": {}})
    decision = decide((OK, unbound))
    assert decision.verdict is Verdict.FAILS and "does not start: OSError" in decision.reason


def test_decide_a_construct_failure_both_sides_share_is_compared_as_usual():
    refused = Side({"construct": "OSError: [Errno 22] Invalid argument", "facts": {}})
    assert decide((refused, dataclasses.replace(refused))).verdict is Verdict.SAME


def test_decide_the_harness_failing_is_error_and_names_the_side():
    broken = Side(status="error", error="Traceback: KeyError")
    assert decide((OK, broken)).verdict is Verdict.ERROR
    assert decide((broken, OK)).reason.startswith("baseline:")
    gone = Side(status="nostart", error="SyntaxError")
    assert decide((gone, OK)).verdict is Verdict.ERROR  # the engine compares nothing then


def test_decide_a_target_that_finishes_where_the_baseline_hangs_differs():
    base_hung = Side({"facts": {}, "status": "hang"}, status="hang")
    first = decide((base_hung, OK))
    assert first.verdict is Verdict.DIFFERS and first.needs_rerun
    assert "baseline did not finish" in first.reason
    assert decide((base_hung, OK), [(base_hung, OK)]).verdict is Verdict.DIFFERS


def test_verdict_values_are_the_report_words():
    assert [v.value for v in Verdict] == [
        "same",
        "explained",
        "differs",
        "fails",
        "hang",
        "flaky",
        "error",
    ]
    assert Verdict.SAME.acceptable and Verdict.EXPLAINED.acceptable
    assert not any(v.acceptable for v in Verdict if v not in (Verdict.SAME, Verdict.EXPLAINED))
