"""Reproducers: a finding saved as a file, and ``python -m harness replay`` running it again.

A reproducer (``<report-dir>/<family>-<hash>.json``) holds the case (its exact bytes and
client schedule), the family, the mode it was found in (``batch`` or ``sockets``), the
transport, the seed, the targets as spec strings, the verdict and what was observed.
``replay`` runs the case again in the same mode and over the same transport (another
target or baseline may be named) and says whether the difference, or the handler's
defect, is still there.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import trio

from harness.compare import readable_diff
from harness.errors import UsageError
from harness.fuzz.case import Case
from harness.fuzz.explain import active_deviations, explain
from harness.fuzz.judge import observation, observed_differences
from harness.targets import Target, parse_target

MODES = ("sockets", "batch")


def save(
    directory: Path,
    case: Case,
    *,
    kind: str,
    seed: int | None,
    mode: str,
    transport: str,
    targets: dict[str, str],
    verdict: str,
    detail: dict[str, Any],
) -> Path:
    """Write a reproducer file and return its path (``<family>-<case key>.json``, with
    ``-batch`` before the suffix for a case found in batch mode: the same case found both
    ways is two findings, and the second must not overwrite the first)."""
    directory.mkdir(parents=True, exist_ok=True)
    suffix = "-batch" if mode == "batch" else ""
    path = directory / f"{case.family}-{case.key()}{suffix}.json"
    data = {
        "kind": kind,
        "family": case.family,
        "mode": mode,
        "transport": transport,
        "case": case.to_json(),
        "seed": seed,
        "targets": targets,
        "verdict": verdict,
        "python": sys.version.split()[0],
        **detail,
        "replay": f"python -m harness replay {path}",
    }
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")
    return path


def load(path: Path) -> dict[str, Any]:
    """Read a reproducer file (``case_object`` is its ``Case``); UsageError when it is not
    one. Files from before modes were recorded were found with sockets."""
    try:
        data = json.loads(Path(path).read_text())
        data["case_object"] = Case.from_json(data["case"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"{path}: not a reproducer file ({exc})") from None
    data["mode"] = {"real": "sockets"}.get(data.get("mode"), data.get("mode") or "sockets")
    if data["mode"] not in MODES:
        raise UsageError(f"{path}: mode={data['mode']!r}: use one of {', '.join(MODES)}")
    return data


async def _replay_differential(
    case: Case, targets: list[Target], baseline: Target, batch: bool, transport: str | None
) -> list[tuple[Target, dict[str, Any], dict[str, Any]]]:
    from harness.fuzz.servers import FuzzServer
    from harness.fuzz.transports import transport_for

    chosen = transport_for(case.family, transport)
    servers = [FuzzServer(t, case.family, chosen) for t in [baseline, *targets]]
    out = []
    async with trio.open_nursery() as nursery:
        try:
            for server in servers:
                await server.start(nursery, serve=not batch)
            raws = [(await server.run([case], batch))[0] for server in servers]
            base = observation(raws[0], case)
            for target, raw in zip(targets, raws[1:]):
                out.append((target, base, observation(raw, case)))
        finally:
            for server in servers:
                await server.stop()
            nursery.cancel_scope.cancel()
    return out


def replay_differential(
    data: dict[str, Any],
    targets: list[Target] | None = None,
    baseline: Target | None = None,
    log: Callable[[str], None] = print,
) -> bool:
    """Run a saved differential case again, in its mode; True when a difference no
    deviation explains is still there."""
    case: Case = data["case_object"]
    saved = data.get("targets", {})
    targets = targets or [parse_target(saved.get("target", "reference"))]
    baseline = baseline or parse_target(saved.get("baseline", "stdlib"))
    batch = data["mode"] == "batch"
    log(f"replaying {case.describe()} ({data['mode']})")
    found = False
    runs = trio.run(_replay_differential, case, targets, baseline, batch, data.get("transport"))
    for target, base, got in runs:
        keys = observed_differences(base, got)
        explaining = explain(case, base, got, keys, active_deviations(target)) if keys else []
        if not keys:
            log(f"{target.name}: same as {baseline.name}")
        elif explaining:
            log(f"{target.name}: explained: {explaining[0].describe()}")
        else:
            found = True
            log(f"{target.name}: differs from {baseline.name} in {', '.join(keys)}")
            log(readable_diff(base, got, (baseline.name, target.name)))
    return found


def replay_handler(
    data: dict[str, Any], target: Target | None = None, log: Callable[[str], None] = print
) -> bool:
    """Run a saved handler case again; True when the same kind of defect shows."""
    from harness.fuzz.handler import HandlerFuzzConfig, HandlerFuzzer

    config = HandlerFuzzConfig(
        handler=data["handler"],
        server=data["server"],
        target=target or parse_target(data.get("targets", {}).get("target", "stdlib")),
        transport=data.get("transport"),
        duration=None,
    )
    fuzzer = HandlerFuzzer(config)

    async def main() -> tuple[str, str] | None:
        async with trio.open_nursery() as nursery:
            fuzzer.nursery = nursery
            try:
                await fuzzer.start()
                await fuzzer.describe()
                return await fuzzer.detect(data["case_object"])
            finally:
                await fuzzer.server.stop()
                nursery.cancel_scope.cancel()
        return None

    found = trio.run(main)
    if found is None:
        log("no defect")
        return False
    log(f"{found[0]}: {found[1]} (expected: {data.get('finding')})")
    return found[0] == data.get("finding")
