"""The fuzzers' verdicts go through ``harness.compare.decide``, with the one ``Known`` model.

Pure and fast: made-up observations of fuzz cases (the shapes ``harness.fuzz.judge``
gives), the reference's real explainers, and the differential fuzzer's ``settle`` with its
runs of a case replaced by scripted ones (no server process).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import trio

from harness.compare import Verdict, decide
from harness.fuzz.case import Case
from harness.fuzz.differential import FuzzConfig, Fuzzer
from harness.fuzz.driver import Failure
from harness.fuzz.explain import DEVIATIONS, active_deviations
from harness.fuzz.judge import CaseRun, case_runs, observed_differences, signature
from harness.known import deviation
from harness.scenario import Known
from harness.targets import parse_target

REFERENCE = parse_target("reference")
ACTIVE = active_deviations(REFERENCE)
VERSIONS = ((3, 11, 7), (3, 11, 7))

CASE = Case("http-files", b"GET /a HTTP/1.0\r\n\r\n")
OK = {"reply": "HTTP/1.0 200 OK\r\n\r\nhi", "end": "eof", "errors": [], "stderr": ""}
NOT_FOUND = {**OK, "reply": "HTTP/1.0 404 File not found\r\n\r\n<!DOCTYPE HTML>"}
# gh-134098: '/dir%2f' was a redirect; the fix lists the directory.
SLASH = Case("http-files", b"GET /dir%2f HTTP/1.0\r\n\r\n")
MOVED = {**OK, "reply": "HTTP/1.0 301 Moved Permanently\r\nLocation: /dir%2f/\r\n\r\n"}
LISTING = {**OK, "reply": "HTTP/1.0 200 OK\r\n\r\nlisting"}


def fuzz_decide(case, first, reruns=(), alone_first=False):
    """What the differential fuzzer asks of ``decide``, on (baseline, target) observations."""
    return decide(
        case_runs(*first, VERSIONS, alone_first),
        [case_runs(*pair, VERSIONS) for pair in reruns],
        known=ACTIVE,
        labels=REFERENCE.labels,
        subject=case,
        differences=observed_differences,
    )


def test_a_difference_every_run_alone_repeats_is_differs():
    first = fuzz_decide(CASE, (OK, NOT_FOUND))
    assert first.verdict is Verdict.DIFFERS and first.needs_rerun and first.keys == ("reply",)
    confirmed = fuzz_decide(CASE, (OK, NOT_FOUND), [(OK, NOT_FOUND), (OK, NOT_FOUND)])
    assert confirmed.verdict is Verdict.DIFFERS and not confirmed.needs_rerun


def test_an_explained_difference_says_its_reason_and_issue():
    decision = fuzz_decide(SLASH, (MOVED, LISTING))
    assert decision.verdict is Verdict.EXPLAINED and not decision.needs_rerun
    assert decision.reason == (
        "a trailing slash is judged after percent-decoding ('/dir%2f' lists the directory, "
        "'/file%2f' is not found) (gh-134098)"
    )
    assert [k.issue for k in decision.known] == ["gh-134098"]
    # The same difference on a target that is not the reference is not explained.
    other = decide(case_runs(MOVED, LISTING, VERSIONS), labels={"mine"}, known=ACTIVE)
    assert other.verdict is Verdict.DIFFERS
    # Nor on a Python whose stdlib has the fix (3.13.4 for gh-134098).
    fixed = ((3, 13, 4), (3, 13, 4))
    on_fixed = decide(
        case_runs(MOVED, LISTING, fixed),
        known=DEVIATIONS,
        labels=REFERENCE.labels,
        subject=SLASH,
        differences=observed_differences,
    )
    assert on_fixed.verdict is Verdict.DIFFERS


def test_an_unconfirmed_difference_is_flaky_never_differs():
    once = fuzz_decide(CASE, (OK, NOT_FOUND), [(OK, NOT_FOUND), (OK, OK)])
    assert once.verdict is Verdict.FLAKY
    assert once.reason == "the difference repeated 1 of 2 times on rerun"
    never = fuzz_decide(CASE, (OK, NOT_FOUND), [(OK, OK), (OK, OK)])
    assert never.verdict is Verdict.FLAKY and "did not repeat" in never.reason
    # A rerun whose difference a deviation explains confirms nothing either.
    broken = {**OK, "reply": "HTTP/1.0 500 Internal Server Error\r\n\r\n"}
    assert fuzz_decide(SLASH, (MOVED, broken)).verdict is Verdict.DIFFERS
    explained = fuzz_decide(SLASH, (MOVED, broken), [(MOVED, LISTING), (MOVED, broken)])
    assert explained.verdict is Verdict.FLAKY


def test_a_rerun_that_hangs_never_confirms():
    hung = {"end": "closed", "server": "unresponsive"}
    decision = fuzz_decide(CASE, (OK, NOT_FOUND), [(OK, hung), (OK, hung)])
    assert decision.verdict is Verdict.HANG
    assert decision.reason == "the difference could not be confirmed: the rerun hung"
    # A baseline that stops answering on its rerun leaves the difference unconfirmed.
    base_hung = fuzz_decide(CASE, (OK, NOT_FOUND), [(hung, NOT_FOUND)])
    assert base_hung.verdict is Verdict.FLAKY and "baseline's rerun" in base_hung.reason
    # One rerun that compares decides, whatever the other did.
    mixed = fuzz_decide(CASE, (OK, NOT_FOUND), [(OK, hung), (OK, NOT_FOUND)])
    assert mixed.verdict is Verdict.DIFFERS


def test_a_server_unresponsive_among_other_cases_is_a_difference_to_confirm_alone():
    hung = {"end": "closed", "server": "unresponsive"}
    assert case_runs(OK, hung, VERSIONS, alone=False)[1].status == "completed"
    assert case_runs(OK, hung, VERSIONS, alone=True)[1].status == "hang"
    first = fuzz_decide(CASE, (OK, hung))
    assert first.verdict is Verdict.DIFFERS and first.needs_rerun
    assert fuzz_decide(CASE, (OK, hung), [(OK, OK), (OK, OK)]).verdict is Verdict.FLAKY


def test_a_server_that_crashed_is_an_observation_confirmed_like_any_other():
    died = {"server": "died", "errors": []}
    crashed = fuzz_decide(CASE, (OK, died), [(OK, died), (OK, died)])
    assert crashed.verdict is Verdict.DIFFERS and "server" in crashed.keys
    once = fuzz_decide(CASE, (OK, died), [(OK, OK), (OK, died)])
    assert once.verdict is Verdict.FLAKY
    both = fuzz_decide(CASE, (died, died))
    assert both.verdict is Verdict.SAME


def test_the_handler_fuzzers_defects_are_failures_confirmed_by_their_rerun():
    held_to = CaseRun({})
    found = CaseRun({}, violations=("exception: KeyError: 'x'",))
    fails = decide((held_to, found), [(held_to, found)])
    assert fails.verdict is Verdict.FAILS and fails.reason == "exception: KeyError: 'x'"
    flaky = decide((held_to, found), [(held_to, CaseRun({}))])
    assert flaky.verdict is Verdict.FLAKY and "did not repeat" in flaky.reason


def test_one_known_model_for_scenarios_and_fuzz_cases():
    assert all(isinstance(k, Known) and k.matches is not None for k in DEVIATIONS)
    # The versions come from implementation.deviations, as for a scenario's deviation().
    scenario_known = deviation("gh-134098", ["facts.reply"])
    fuzz_known = next(k for k in DEVIATIONS if k.issue == "gh-134098")
    for version in ((3, 11, 7), (3, 13, 3), (3, 13, 4), (3, 14, 0)):
        assert scenario_known.applies_to("reference", version) == fuzz_known.applies_to(
            "reference", version
        )
    # A recogniser explains nothing without the difference's observations.
    assert not fuzz_known.covers("reply", "reference", (3, 11, 7))
    # A recogniser that trips over an odd observation recognises nothing.
    broken = dataclasses.replace(fuzz_known, matches=lambda *a: 1 / 0)
    assert not broken.recognises(SLASH, (MOVED, LISTING), ["reply"])


# -- the differential fuzzer's settle, with scripted runs of the case ---------------------


class ScriptedFuzzer(Fuzzer):
    """A ``Fuzzer`` whose runs of a case alone are scripted (no server is started)."""

    def __init__(self, config, script):
        super().__init__(config)
        self.script = list(script)

    async def compare_cases(self, cases):
        out = []
        for case in cases:
            base, got = self.script.pop(0) if case == CASE else (OK, OK)
            out.append((case, base, got))
        return out


def settle(tmp_path: Path, script) -> Fuzzer:
    config = FuzzConfig(
        target=REFERENCE,
        baseline=parse_target("stdlib"),
        family="http-files",
        report_dir=tmp_path,
        shrink_seconds=1.0,
    )
    fuzzer = ScriptedFuzzer(config, script)
    keys = observed_differences(OK, NOT_FOUND)
    failure = Failure(None, signature(keys, OK, NOT_FOUND), (CASE, keys, OK, NOT_FOUND))
    trio.run(fuzzer.settle, failure, 0.0)
    assert not fuzzer.script, "every scripted run was used"
    return fuzzer


def test_settle_confirms_by_three_runs_alone(tmp_path):
    # Run alone once (the minimizer's candidates, each one byte shorter, show nothing),
    # then twice more.
    fuzzer = settle(tmp_path, [(OK, NOT_FOUND)] * 3)
    (finding,) = fuzzer.outcome.findings
    assert finding.verdict == "differs" and finding.case == CASE and finding.keys == ["reply"]
    assert '"verdict": "differs"' in finding.path.read_text()


def test_settle_reports_a_difference_that_does_not_repeat_alone_as_flaky(tmp_path):
    fuzzer = settle(tmp_path, [(OK, OK), (OK, NOT_FOUND), (OK, NOT_FOUND)])
    (finding,) = fuzzer.outcome.findings
    assert finding.verdict == "flaky"
    assert finding.reason == "the difference repeated 2 of 3 times on rerun"
    assert "404" in finding.diff  # the difference as first seen


def test_settle_reports_reruns_that_hang_as_hang(tmp_path):
    hung = {"end": "closed", "server": "unresponsive"}
    fuzzer = settle(tmp_path, [(OK, hung)] * 3)
    (finding,) = fuzzer.outcome.findings
    assert finding.verdict == "hang" and "could not be confirmed" in finding.reason
