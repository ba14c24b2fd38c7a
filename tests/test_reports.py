"""The report formats, causes, expectations, shards and exit statuses (no processes)."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest

from harness.errors import UsageError
from harness.reports import (
    ExitCode,
    Finding,
    Row,
    causes,
    finishing,
    html_report,
    json_report,
    junit,
    markdown,
    shards,
    terminal,
)
from harness.reports.expect import Expectations

DATA = Path(__file__).parent / "data"
MIMETYPES = "AttributeError: module 'mimetypes' has no attribute 'guess_file_type'"


def mimetypes_diff(name: str) -> str:
    """A diff as the engine writes it when the server raised in every hook on the way."""
    return "\n".join(
        [
            "--- stdlib: events",
            "+++ cp313: events",
            "@@ -3,7 +3,10 @@",
            f'+ "finish_request:raised[serve] {MIMETYPES}": 1,',
            '- "handle:returned[serve]": 1,',
            f'+ "handle:raised[serve] {MIMETYPES}": 1,',
            "--- stdlib: facts.reply",
            "+++ cp313: facts.reply",
            f'- "reply": "HTTP/1.0 200 OK\\r\\n\\r\\n{name}",',
            '+ "reply": "",',
            "--- stdlib: stderr",
            "+++ cp313: stderr",
            "+Traceback (most recent call last):",
            "+  <frames>",
            f"+{MIMETYPES}",
        ]
    )


def sample_rows() -> list[Row]:
    rows = [
        Row(
            f"http/types/t{i}",
            "cp313",
            "differs",
            diff=mimetypes_diff(f"t{i}"),
            differing_keys=["events", "facts.reply", "stderr"],
            reproducer=f"python -m harness run --select 'http/types/t{i}'",
            python=[3, 11, 7],
        )
        for i in range(5)
    ]
    rows.append(
        Row(
            "http/methods/head_file",
            "cp313",
            "fails",
            diff=mimetypes_diff("head"),
            reason="HEAD sends exactly the headers GET sends, and no body",
            reproducer="python -m harness run --select 'http/methods/head_file'",
            python=[3, 11, 7],
        )
    )
    rows += [
        Row(
            f"socketserver/tcp/r{i}",
            "cp313",
            "differs",
            diff="--- stdlib: facts.reply\n+++ cp313: facts.reply\n-ok\n+reset",
            differing_keys=["facts.reply"],
            reproducer=f"repro r{i}",
            python=[3, 11, 7],
        )
        for i in range(2)
    ]
    rows.append(
        Row(
            "socketserver/tcp/slow",
            "cp313",
            "hang",
            reason="did not finish within 20 s",
            reproducer="repro slow",
            python=[3, 11, 7],
        )
    )
    rows.append(Row("socketserver/tcp/same", "cp313", "same", python=[3, 11, 7]))
    rows.append(
        Row(
            "http/headers/known",
            "cp313",
            "explained",
            reason="gh-1: fixed later",
            diff="--- a\n+++ b\n-x\n+y",
            python=[3, 11, 7],
        )
    )
    return rows


def build(rows, expectations=None, **kw):
    applied = expectations.apply(rows) if expectations else None
    targets = [
        {
            "name": "cp313",
            "modules": {"http.server": "/x/server.py"},
            "python": "py",
            "role": "target",
        },
        {"name": "stdlib", "modules": {}, "python": "py", "role": "baseline"},
    ]
    return json.loads(
        json.dumps(
            json_report.build(
                rows, targets, ["python", "-m", "harness"], 1.5, expectations=applied, **kw
            )
        )
    )


# -- rows and causes ------------------------------------------------------------------------


def test_a_row_refuses_a_word_that_is_not_a_verdict_and_takes_its_interpreter_from_python():
    with pytest.raises(ValueError):
        Row("a/b/c", "t", "broken")
    assert Row("a/b/c", "t", "same", python=[3, 12, 1]).interpreter == "3.12.1"
    assert Row("dependents/logging/config/x", "t", "same").family == "dependents/logging/config"


def test_rows_survive_the_json_round_trip():
    row = Row(
        "fuzz/http/abc",
        "ref",
        "differs",
        notes=["spelling"],
        finding=Finding(data="GET / HTTP/1.0\\r\\n", replay="python -m harness replay f"),
    )
    again = Row.from_json(json.loads(json.dumps(row.to_json())))
    assert again == row


def test_results_sharing_a_server_exception_form_one_group_largest_first():
    report = build(sample_rows())
    first, second, third = report["causes"]
    assert first["count"] == 6  # five differs and a fails: one cause
    assert first["verdicts"] == {"differs": 5, "fails": 1}
    assert MIMETYPES in first["title"]
    assert "finish_request" in first["title"] and "handle" in first["title"]
    assert second["count"] == 2 and second["kind"] == "change"  # the same change, twice
    assert third["kind"] == "verdict" and third["count"] == 1
    # explained and same rows have no cause; the example shows the cause
    rows = report["results"]
    assert all(not r["cause"] for r in rows if r["verdict"] in ("same", "explained"))
    assert MIMETYPES in rows[first["example"]]["diff"]


def test_a_different_change_is_a_different_cause():
    a = Row("x/y/a", "t", "differs", diff="--- b: k\n+++ t: k\n-1\n+2", differing_keys=["k"])
    b = Row("x/y/b", "t", "differs", diff="--- b: k\n+++ t: k\n-1\n+3", differing_keys=["k"])
    assert causes.signature(a) != causes.signature(b)
    c = Row("x/y/c", "t2", "differs", diff="--- b: k\n+++ t2: k\n-1\n+2", differing_keys=["k"])
    assert causes.signature(a) == causes.signature(c)  # the header names the target only


def test_an_http_error_page_is_not_taken_for_an_exception():
    row = Row("x/y/z", "t", "differs", diff='+ "reply": "<p>Error code: 404</p>"')
    assert causes.signature(row)[0] == "change"
    start = Row("x/y/z", "t", "fails", reason="target does not start: ImportError: no _ssl")
    assert causes.signature(start)[:2] == ("exception", "ImportError: no _ssl")


# -- expectations ---------------------------------------------------------------------------


def write_toml(tmp_path, text):
    path = tmp_path / "expect.toml"
    path.write_text(text)
    return path


def test_expected_results_leave_the_exit_status_0(tmp_path):
    rows = [r for r in sample_rows() if r.verdict in ("differs", "fails", "same", "explained")]
    path = write_toml(
        tmp_path,
        """
[[expect]]
scenario = "http/*"
target = "cp313"
verdict = "differs"
reason = "3.13's server needs mimetypes.guess_file_type"

[[expect]]
scenario = "http/methods/head_file"
target = "cp313"
verdict = "fails"
reason = "same cause"

[[expect]]
scenario = "socketserver/tcp/r*"
target = "*"
verdict = "differs"
reason = "resets"
""",
    )
    # The first matching entry wins: head_file is matched by entry 1 (differs) first.
    report = build(rows, Expectations.load(path))
    stale = report["expectations"]["stale"]
    assert sorted((s["entry"], s["scenario"], s["verdict"]) for s in stale) == [
        (1, "http/headers/known", "explained"),
        (1, "http/methods/head_file", "fails"),
    ]
    assert finishing.exit_status(report) == ExitCode.FOUND
    assert report["expectations"]["unused"] == [2]


def test_a_scenario_that_is_now_same_makes_its_entry_stale(tmp_path):
    path = write_toml(
        tmp_path,
        """
[[expect]]
scenario = "socketserver/tcp/*"
target = "cp313"
verdict = "differs"
reason = "resets"
""",
    )
    rows = [
        Row("socketserver/tcp/r0", "cp313", "differs"),
        Row("socketserver/tcp/r1", "cp313", "differs"),
    ]
    report = build(rows, Expectations.load(path))
    assert report["problems"] == 0 and report["expected"] == 2
    assert finishing.exit_status(report) == ExitCode.OK
    rows = [
        Row("socketserver/tcp/r0", "cp313", "differs"),
        Row("socketserver/tcp/r1", "cp313", "same"),
    ]
    report = build(rows, Expectations.load(path))
    assert report["expectations"]["stale"][0]["scenario"] == "socketserver/tcp/r1"
    assert finishing.exit_status(report) == ExitCode.FOUND


def test_known_flaky_entries_allow_either_outcome_and_are_counted(tmp_path):
    path = write_toml(
        tmp_path,
        """
[[expect]]
scenario = "socketserver/threading/*"
target = "mine"
flaky = true
reason = "start order"
""",
    )
    rows = [
        Row("socketserver/threading/a", "mine", "flaky"),
        Row("socketserver/threading/b", "mine", "same"),
        Row("socketserver/threading/c", "mine", "differs"),
    ]
    report = build(rows, Expectations.load(path))
    assert report["expectations"]["flaky"] == [{"entry": 1, "same": 1, "other": 2}]
    assert report["expectations"]["stale"] == []
    assert finishing.exit_status(report) == ExitCode.OK
    rows.append(Row("socketserver/threading/d", "mine", "error"))
    assert finishing.exit_status(build(rows, Expectations.load(path))) == ExitCode.INTERNAL


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("[[expect]]\nscenario='a'\ntarget='b'\nreason='c'\n", "needs verdict"),
        ("[[expect]]\nscenario='a'\ntarget='b'\nverdict='same'\nreason='c'\n", "not one of"),
        ("[[expect]]\nscenario='a'\ntarget='b'\nverdict='differs'\n", "needs reason"),
        (
            "[[expect]]\nscenario='a'\ntarget='b'\nverdict='differs'\nreason='c'\nwhy=1\n",
            "unknown key",
        ),
        ("[expect\n", "not valid TOML"),
        ("[other]\n", "unknown table"),
    ],
)
def test_a_wrong_expectation_file_is_bad_usage_naming_the_entry(tmp_path, text, says):
    with pytest.raises(UsageError, match=says):
        Expectations.load(write_toml(tmp_path, text))


# -- formats --------------------------------------------------------------------------------


def test_junit_is_valid_against_the_schema_and_reads_as_ci_systems_read_it(tmp_path):
    xmlschema = pytest.importorskip("xmlschema", reason="xmlschema is not installed")
    junitparser = pytest.importorskip("junitparser", reason="junitparser is not installed")
    rows = sample_rows()
    rows.append(Row("fuzz/http/k", "cp313", "error", reason="bad \x00 byte\x1b"))
    path = write_toml(
        tmp_path,
        """
[[expect]]
scenario = "socketserver/tcp/r0"
target = "cp313"
verdict = "differs"
reason = "a reset"
""",
    )
    report = build(rows, Expectations.load(path))
    out = junit.write(report, tmp_path / "junit.xml")
    xmlschema.XMLSchema(str(DATA / "junit.xsd")).validate(str(out))
    xml = junitparser.JUnitXml.fromfile(str(out))
    cases = {case.name: case for suite in xml for case in suite}
    assert len(cases) == len(rows)
    assert {suite.name for suite in xml} == {
        "http/types",
        "http/methods",
        "socketserver/tcp",
        "http/headers",
        "fuzz/http",
    }
    failed = cases["http/types/t0 [cp313]"].result
    assert [type(r).__name__ for r in failed] == ["Failure"]
    assert failed[0].type == "differs" and MIMETYPES in failed[0].text
    assert "reproduce: python -m harness run --select 'http/types/t0'" in failed[0].text
    assert type(cases["socketserver/tcp/r0 [cp313]"].result[0]).__name__ == "Skipped"
    assert cases["socketserver/tcp/same [cp313]"].is_passed
    assert cases["http/headers/known [cp313]"].is_passed
    assert type(cases["fuzz/http/k [cp313]"].result[0]).__name__ == "Error"
    assert cases["socketserver/tcp/slow [cp313]"].result[0].type == "hang"
    suite = next(s for s in xml if s.name == "socketserver/tcp")
    assert (suite.tests, suite.failures, suite.skipped) == (4, 2, 1)
    props = {p.name: p.value for p in suite.properties()}
    assert props["target:cp313"].startswith("http.server=/x/server.py")
    assert "baseline:stdlib" in props
    assert "\\x00" in out.read_text()  # written out, not dropped or left invalid


def test_markdown_fits_a_step_summary_and_leads_with_the_causes():
    rows = sample_rows()
    text = markdown.render(build(rows))
    assert text.index("## Causes") < text.index("## Every result that is not")
    assert f"6 results: finish_request, handle raised {MIMETYPES}" in text
    assert "python -m harness run --select 'http/types/t0'" in text
    big = [
        Row(f"a/b/s{i:05}", "t", "differs", diff="+x" * 5000, reproducer="r" * 300)
        for i in range(3000)
    ]
    text = markdown.render(build(big), limit=200_000)
    assert len(text.encode()) < 200_000
    assert "more rows in `report.json`" in text


def test_a_diff_with_backticks_cannot_break_out_of_its_fence():
    row = Row("a/b/c", "t", "differs", diff="-x\n   ```\n+``````\n+y", reproducer="r")
    text = markdown.render(build([row]))
    fence = re.search(r"^(`{3,})diff$", text, re.M).group(1)
    assert len(fence) > 6


def test_html_is_one_self_contained_page_with_the_matrix_and_the_data(tmp_path):
    rows = sample_rows()
    rows[0].reason = "</script><script>alert(1)</script>"
    rows.append(
        Row(
            "fuzz/http/abc",
            "cp313",
            "differs",
            finding=Finding(data="GET /\\x00 HTTP/1.1", replay="python -m harness replay x.json"),
        )
    )
    page = html_report.render(build(rows))
    assert page.count("</script>") == 3  # the data's own "</script>" is escaped
    assert "http://" not in page and "https://" not in page and "src=" not in page
    data = re.search(r"<script type='application/json' id='report-data'>(.*?)</script>", page, re.S)
    assert json.loads(data.group(1))[0]["reason"] == rows[0].reason
    assert page.count("class='cell v-differs") == 8
    assert "Fuzz findings" in page and "python -m harness replay x.json" in page
    assert MIMETYPES in page  # the cause list


def test_every_format_is_rendered_from_report_json(tmp_path):
    report = build(sample_rows())
    written = finishing.write_all(report, tmp_path)
    assert {p.name for p in written.values()} == {
        "report.json",
        "report.md",
        "report.html",
        "junit.xml",
    }
    stored = json_report.load(written["json"])
    assert (tmp_path / "report.md").read_text() == markdown.render(stored)
    assert (tmp_path / "junit.xml").read_text() == junit.render(stored)


def test_a_schema_1_report_is_upgraded_when_read(tmp_path):
    old = {
        "schema": 1,
        "created": "2025-01-01T00:00:00+00:00",
        "command": ["x"],
        "duration_s": 1,
        "targets": [],
        "counts": {"differs": 1},
        "results": [
            {
                "scenario": "a/b/c",
                "target": "t",
                "verdict": "differs",
                "duration_s": 0.1,
                "diff": "+ValueError: bad",
                "reason": "",
                "differing_keys": ["stderr"],
                "violations": [],
                "reproducer": "r",
                "python": [3, 11, 7],
                "observation": None,
                "description": "d",
            }
        ],
    }
    path = tmp_path / "old.json"
    path.write_text(json.dumps(old))
    report = json_report.load(path)
    assert (
        report["schema"] == 2
        and report["causes"][0]["title"] == "the target raised ValueError: bad"
    )
    path.write_text(json.dumps({"schema": 99}))
    with pytest.raises(ValueError, match="schema 99"):
        json_report.load(path)


# -- terminal ---------------------------------------------------------------------------------


def test_the_summary_groups_first_then_lists_every_result_with_its_reproducer():
    report = build(sample_rows())
    out = io.StringIO()
    terminal.summary(report, {"json": Path("r/report.json")}, out, colour=False)
    text = out.getvalue()
    assert text.index("== 6 results") < text.index("== 2 results") < text.index("Every result")
    assert text.count("$ python -m harness run --select 'http/types/t") == 5
    assert "explained" in text and "gh-1: fixed later" in text
    assert "report: r/report.json" in text


def test_a_result_without_a_reproducer_prints_no_empty_command():
    rows = [Row("fuzz/http-parser/abc", "cp313", "explained", reason="gh-1: known")]
    out = io.StringIO()
    terminal.summary(build(rows), {"json": Path("r/report.json")}, out, colour=False)
    text = out.getvalue()
    assert "fuzz/http-parser/abc" in text
    assert "$ \n" not in text and not text.rstrip().endswith("$")


def test_progress_is_one_live_line_on_a_terminal_and_plain_lines_elsewhere():
    class Scenario:
        id = "a/b/c"

    class Result:
        target, verdict = "t", "same"

    tty = io.StringIO()
    live = terminal.Progress(3, stream=tty, tty=True)
    for _ in range(3):
        live(Scenario, [Result])
    live.close()
    assert tty.getvalue().count("\r\x1b[K") >= 1 and tty.getvalue().count("\n") == 1
    assert "[3/3] 100%" in tty.getvalue() and "3 same" in tty.getvalue()
    plain = io.StringIO()
    log = terminal.Progress(100, stream=plain, tty=False, every=3600)
    for _ in range(100):
        log(Scenario, [Result])
    assert "\r" not in plain.getvalue() and len(plain.getvalue().splitlines()) == 10
    verbose = io.StringIO()
    each = terminal.Progress(2, stream=verbose, tty=False, verbose=True)
    each(Scenario, [Result])
    assert "a/b/c  t=same" in verbose.getvalue()


# -- shards and exit statuses ---------------------------------------------------------------


def test_shards_are_deterministic_disjoint_and_cover_the_selection():
    ids = [f"a/b/s{i:03}" for i in range(50)]
    parts = [shards.select(ids, ids, k, 4, None) for k in range(1, 5)]
    assert sorted(i for part in parts for i in part) == ids
    assert parts == [shards.select(ids, list(ids), k, 4, None) for k in range(1, 5)]
    assert max(map(len, parts)) - min(map(len, parts)) <= 1


def test_shards_balance_by_an_earlier_reports_durations():
    ids = ["a/b/long", "a/b/x1", "a/b/x2", "a/b/x3", "a/b/x4", "a/b/new"]
    durations = {"a/b/long": 40.0, "a/b/x1": 10.0, "a/b/x2": 10.0, "a/b/x3": 10.0, "a/b/x4": 10.0}
    one, two = (shards.select(ids, ids, k, 2, durations) for k in (1, 2))
    loads = [sum(durations.get(i, 10.0) for i in part) for part in (one, two)]
    assert sorted(loads) == [40.0, 50.0]  # dealt out by id, it would be 60 and 30
    dealt = [shards.select(ids, ids, k, 2, None) for k in (1, 2)]
    assert sorted(sum(durations.get(i, 10.0) for i in part) for part in dealt) == [30.0, 60.0]
    with pytest.raises(UsageError):
        shards.parse_shard("3/2")
    assert shards.parse_shard(" 2/4 ") == (2, 4)


def test_merge_refuses_a_result_given_twice(tmp_path):
    report = build([Row("a/b/c", "t", "same")])
    for name in ("one", "two"):
        (tmp_path / name).mkdir()
        json_report.write(report, tmp_path / name)
    with pytest.raises(UsageError, match="in both"):
        shards.merge([tmp_path / "one" / "report.json", tmp_path / "two" / "report.json"])


def test_an_interrupted_report_exits_128_plus_the_signal():
    report = build([Row("a/b/c", "t", "differs")], interrupted="SIGTERM")
    assert finishing.exit_status(report) == ExitCode.INTERRUPTED_SIGTERM == 143
    report = build([Row("a/b/c", "t", "same")], interrupted=finishing.signal_name(2))
    assert report["interrupted"] == "SIGINT"
    assert finishing.exit_status(report) == ExitCode.INTERRUPTED_SIGINT == 130
