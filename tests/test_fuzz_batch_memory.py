"""Batch mode's memory: the harness holds a template's cases one chunk at a time.

A datagram case carries up to four datagrams of up to 64 KiB. When a template's cases were
all listed at once (those of a template that may stay open, three times as many), a
batch datagram campaign reached 200 MB of RSS within ten seconds; taken one chunk at a
time, with only their hashes kept, it stays near 70 MB.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from harness.fuzz.campaign import load_progress

ROOT = Path(__file__).resolve().parent.parent
#: What the harness process may reach (its imports alone are about 45 MB).
RSS_BOUND = 150 << 20
CASES = 8000


def test_batch_datagram_campaign_stays_small(tmp_path: Path) -> None:
    """A batch datagram campaign of ``CASES`` cases, reference against the stdlib: no
    difference, and its RSS never passes ``RSS_BOUND``."""
    report_dir = tmp_path / "campaign"
    command = [sys.executable, "-m", "harness", "fuzz", "--family", "datagram", "--batch"]
    command += ["--max-cases", str(CASES), "--quiet", "--report-dir", str(report_dir)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    progress = load_progress(report_dir)
    assert progress["cases"] >= CASES, progress
    assert 0 < progress["rss_max_bytes"] < RSS_BOUND, progress
