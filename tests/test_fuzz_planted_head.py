"""The planted defect of issue 13, found by the fuzzer alone: error replies to HEAD carry
their body.

A copy of the stdlib's ``http/server.py`` whose ``send_error`` writes the error page even
for HEAD is fuzzed as a user would (``--target name=planted,http.server=COPY``) with the
``http-errors`` family, over sockets and in batch mode. The run must find it within a few
thousand cases, shrink it to a short HEAD request, save a reproducer, and ``replay`` must
show the body that should not be there. The unchanged copy, loaded the same way, must not
show it, so the finding is the planted change's and not the copy's loading.
"""

import json
import re
from pathlib import Path

import pytest
from harness_cli import harness
from stdlib_copies import stdlib_source

from harness.fuzz import Case

ROOT = Path(__file__).resolve().parent.parent

#: ``send_error``'s guard that keeps the page out of a HEAD reply, and the planted change.
GUARD = "if self.command != 'HEAD' and body:"
PLANTED = "if body:"


@pytest.fixture(scope="module")
def copies(tmp_path_factory):
    """The stdlib's http/server.py twice: with the planted change, and unchanged."""
    source = stdlib_source("http.server")
    assert source.count(GUARD) == 1, "send_error's HEAD guard moved: update GUARD"
    folder = tmp_path_factory.mktemp("copies")
    planted = folder / "planted" / "server.py"
    unchanged = folder / "unchanged" / "server.py"
    for path, text in ((planted, source.replace(GUARD, PLANTED)), (unchanged, source)):
        path.parent.mkdir()
        path.write_text(text)
    return planted, unchanged


def is_shrunk(data: bytes) -> bool:
    """Whether a request looks shrunk: short lines, except at most one held just over the
    65536-byte line limit (a 414 or 431 needs it), and no more header lines than the
    100-header limit (431) needs."""
    lines = data.split(b"\n")
    long = [line for line in lines if len(line) > 64]
    at_limit = all(65536 < len(line) + 1 <= 65536 + 32 for line in long)
    return len(lines) <= 103 and len(long) <= 1 and at_limit


def split_reply(reply: str) -> tuple[str, str]:
    """A recorded reply's header block and what follows it."""
    head, _, body = reply.partition("\r\n\r\n")
    return head, body


@pytest.mark.parametrize(("mode", "seed"), [("sockets", 1), ("sockets", 2), ("batch", 3)])
def test_head_error_body_is_found_shrunk_saved_and_replayed(tmp_path, copies, mode, seed):
    planted, unchanged = copies
    reports = tmp_path / "reports"
    target = f"name=planted,http.server={planted}"
    args = ["fuzz", "--target", target, "--family", "http-errors", "--seed", str(seed)]
    args += ["--max-cases", "3000", "--max-findings", "1", "--shrink-seconds", "10"]
    args += ["--report-dir", str(reports)] + (["--batch"] if mode == "batch" else [])
    result = harness(*args)
    out = result.stdout + result.stderr
    assert result.returncode == 1, out

    # The finding: one confirmed difference, in the reply only.
    report = json.loads((reports / "report.json").read_text())
    assert report["counts"] == {"differs": 1}, out
    (row,) = report["results"]
    assert row["scenario"].startswith("fuzz/http-errors/") and row["target"] == "planted"
    assert report["fuzz"]["mode"] == mode and report["fuzz"]["cases"] <= 3000 + 2 * 1000

    # Its reproducer: a short HEAD request (shrunk), the family, mode and targets it was
    # found with, and both replies: the stdlib's stops after the headers, the planted
    # copy's goes on with exactly Content-Length bytes of error page.
    (path,) = report["fuzz"]["reproducers"]
    saved = json.loads(Path(path).read_text())
    assert (saved["family"], saved["mode"], saved["verdict"]) == ("http-errors", mode, "differs")
    assert saved["targets"] == {"target": target, "baseline": "stdlib"}
    case = Case.from_json(saved["case"])
    assert case.data.startswith(b"HEAD ") and is_shrunk(case.data), case.data[:300]
    assert saved["differing_keys"] == ["reply"]
    baseline, reply = saved["baseline"]["reply"], saved["target"]["reply"]
    if baseline == "":
        # HTTP/0.9: no status line or headers; the stdlib sends nothing for HEAD.
        assert reply.startswith("<!DOCTYPE HTML>") and "Error response" in reply
    else:
        base_head, base_body = split_reply(baseline)
        head, body = split_reply(reply)
        assert head == base_head and base_body == ""
        status = int(head.split(" ", 2)[1])
        assert 400 <= status < 600 or status == 301
        length = int(re.search(r"^Content-Length: (\d+)\r?$", head, re.M).group(1))
        assert len(body.encode("utf-8")) == length > 0 and "Error response" in body

    # Replay: in the mode it was found in, the body is shown and the defect is still there.
    replayed = harness("replay", path)
    assert replayed.returncode == 1, replayed.stdout + replayed.stderr
    assert f"({mode})" in replayed.stdout and "still there" in replayed.stdout
    assert (
        "+<!DOCTYPE HTML>" in replayed.stdout and "differs from stdlib in reply" in replayed.stdout
    )

    # Against the same file without the change, the reproducer shows nothing.
    control = harness("replay", path, "--target", f"name=unchanged,http.server={unchanged}")
    assert control.returncode == 0, control.stdout + control.stderr
    assert "gone" in control.stdout
