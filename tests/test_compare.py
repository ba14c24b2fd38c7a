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
