"""The catalog as pytest items: ``pytest --harness-target SPEC`` (registered as ``pytest11``).

Options (nothing is collected without ``--harness-target``)::

    --harness-target SPEC      a target, as for ``python -m harness run --target`` (repeatable)
    --harness-baseline SPEC    default: the stdlib under the targets' interpreter
    --harness-select GLOB      scenario ids (repeatable; default: all)
    --harness-scenarios MOD    also import MOD (a package: every module in it) for its
                               own @scenario entries (repeatable; ini: harness_scenarios)
    --harness-expect FILE      expected results (TOML, as ``run --expect``)
    --harness-retries N        reruns that confirm a difference (default 1)

Each selected scenario is one item whose node id is the scenario id, so ``-k``, ``-x``,
``--lf``, ``--junitxml`` and xdist (``-n 2``) work as for any test; every item is also
marked ``harness`` (``-m harness`` runs only the catalog). An item runs its scenario on
every target and the baseline (fresh server processes) and

- passes when every target is ``same`` or ``explained``;
- is xfail when what differs is expected by ``--harness-expect``;
- fails otherwise, with each target's verdict, reason, diff and reproducer as the
  message, and when an expectation about it is stale.

Each target's verdict is recorded as a user property (it shows in ``--junitxml``).
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import sys
from pathlib import Path
from typing import Any

import pytest

_STATE = pytest.StashKey[dict[str, Any]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    """The ``--harness-*`` options and the ``harness_scenarios`` ini setting."""
    group = parser.getgroup("harness", "socketserver-harness: the conformance catalog as tests")
    group.addoption(
        "--harness-target",
        action="append",
        default=[],
        metavar="SPEC",
        help="run the catalog against this target (stdlib, reference, name=...,socketserver=...)",
    )
    group.addoption(
        "--harness-baseline",
        default=None,
        metavar="SPEC",
        help="what the targets are compared with (default: the stdlib)",
    )
    group.addoption(
        "--harness-select",
        action="append",
        default=[],
        metavar="GLOB",
        help="only scenarios whose id matches (repeatable)",
    )
    group.addoption(
        "--harness-scenarios",
        action="append",
        default=[],
        metavar="MODULE",
        help="import this module or package for its own @scenario entries (repeatable)",
    )
    group.addoption(
        "--harness-expect",
        default=None,
        metavar="FILE",
        help="expected results (TOML): expected differences are xfail, stale entries fail",
    )
    group.addoption("--harness-retries", type=int, default=1, metavar="N")
    parser.addini(
        "harness_scenarios",
        "modules or packages whose @scenario entries join the catalog",
        type="linelist",
        default=[],
    )


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker; check the options once, before collection."""
    config.addinivalue_line("markers", "harness: a scenario of the socketserver-harness catalog")
    if not config.getoption("harness_target"):
        return
    from harness.cli import default_baseline
    from harness.errors import UsageError
    from harness.reports.expect import Expectations
    from harness.targets import parse_target

    try:
        targets = [parse_target(t) for t in config.getoption("harness_target")]
        spec = config.getoption("harness_baseline")
        baseline = default_baseline(targets) if spec is None else parse_target(spec)
        names = [t.name for t in targets] + [baseline.name]
        if len(set(names)) != len(names):
            raise UsageError(f"target names must differ (got {', '.join(names)}): give name=...")
        path = config.getoption("harness_expect")
        expectations = Expectations.load(Path(path)) if path else None
    except UsageError as exc:
        raise pytest.UsageError(f"socketserver-harness: {exc}") from None
    chosen = selected_scenarios(config)
    if not chosen:
        patterns = " ".join(config.getoption("harness_select")) or "(all)"
        raise pytest.UsageError(f"socketserver-harness: no scenario matches {patterns}")
    config.stash[_STATE] = {
        "targets": targets,
        "baseline": baseline,
        "expectations": expectations,
        "retries": config.getoption("harness_retries"),
        "scenarios": chosen,
    }


def _import_scenarios(names: list[str], rootpath: Path) -> None:
    """Import a user's scenario modules (a package: each module in it) so they register.

    The project's root folder is importable, as for ``python -m pytest``, since this runs
    before pytest puts test folders on ``sys.path``.
    """
    if names and str(rootpath) not in sys.path:
        sys.path.append(str(rootpath))
    for name in names:
        try:
            module = importlib.import_module(name)
        except ImportError as exc:
            raise pytest.UsageError(f"--harness-scenarios {name}: cannot import it ({exc})")
        for info in pkgutil.walk_packages(getattr(module, "__path__", []), f"{name}."):
            importlib.import_module(info.name)


def selected_scenarios(config: pytest.Config) -> list[Any]:
    """The catalog (plus the user's scenarios) matching ``--harness-select``, in id order."""
    import fnmatch

    from scenarios import load_catalog

    catalog = load_catalog()
    _import_scenarios(
        list(config.getini("harness_scenarios")) + config.getoption("harness_scenarios"),
        config.rootpath,
    )
    patterns = config.getoption("harness_select")
    return [
        s
        for sid, s in sorted(catalog.items())
        if not patterns or any(fnmatch.fnmatchcase(sid, p) for p in patterns)
    ]


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Any:
    """Add the catalog to what the session collects (after the user's own tests)."""
    outcome = yield
    report = outcome.get_result()
    if isinstance(collector, pytest.Session) and _STATE in collector.config.stash and report.passed:
        report.result.append(Catalog.from_parent(collector, name=CATALOG, nodeid=CATALOG))


#: the node id of the collector that holds the scenarios
CATALOG = "socketserver-harness"


class Catalog(pytest.Collector):
    """The selected scenarios, one ``ScenarioItem`` each, in id order."""

    def collect(self) -> list[pytest.Item]:
        """One item per scenario selected when pytest was configured."""
        chosen = self.config.stash[_STATE]["scenarios"]
        return [ScenarioItem.from_parent(self, name=s.id, nodeid=s.id, scenario=s) for s in chosen]


class HarnessFailure(Exception):
    """A scenario whose results are not all acceptable (its text is the whole message)."""


class ScenarioItem(pytest.Item):
    """One catalog scenario, run on every target and the baseline."""

    def __init__(self, *, scenario: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scenario = scenario
        self.add_marker("harness")
        # The parts of the id are keywords too: -k "smoke and tcp_echo".
        self.extra_keyword_matches.update(scenario.id.split("/"))

    def runtest(self) -> None:
        """Run the scenario, judge every target, pass, xfail or fail."""
        import trio

        from harness.engine import Engine, Settings
        from harness.reports.row import Row

        state = self.config.stash[_STATE]
        engine = Engine(
            state["targets"],
            state["baseline"],
            Settings(jobs=4, retries=state["retries"], fork_server=False),
        )
        results = trio.run(engine.run, [self.scenario])
        interrupted = getattr(engine, "interrupted", None)
        if interrupted:
            pytest.exit(f"interrupted by signal {interrupted}", returncode=128 + int(interrupted))
        rows = [Row.from_result(r, self.scenario.description) for r in results]
        stale: list[dict[str, Any]] = []
        if state["expectations"] is not None:
            stale = state["expectations"].apply(rows)["stale"]
        for row in rows:
            self.user_properties.append((f"verdict:{row.target}", row.verdict))
        problems = [r for r in rows if r.problem]
        if problems or stale:
            raise HarnessFailure(_message(problems, stale))
        expected = [r for r in rows if r.expected]
        if expected:
            pytest.xfail(
                "; ".join(f"{r.target}: {r.verdict}: {r.expected['reason']}" for r in expected)
            )

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        """The verdicts, diffs and reproducers, not a traceback of the harness."""
        if isinstance(excinfo.value, HarnessFailure):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int, str]:
        """Where the scenario is written (file, line) and its id."""
        function = inspect.unwrap(self.scenario.function)
        try:
            path = Path(inspect.getsourcefile(function) or self.config.rootpath)
            line = function.__code__.co_firstlineno - 1
        except (TypeError, AttributeError):
            path, line = self.config.rootpath, 0
        return path, line, self.scenario.id


def _message(problems: list[Any], stale: list[dict[str, Any]]) -> str:
    parts = []
    for r in problems:
        lines = [f"{r.target}: {r.verdict}" + (f": {r.reason}" if r.reason else "")]
        if r.notes:
            lines.append("notes: " + "; ".join(r.notes))
        if r.diff:
            lines.append(r.diff)
        lines.append(f"reproduce: {r.reproducer}")
        parts.append("\n".join(lines))
    for s in stale:
        parts.append(
            f"stale expectation #{s['entry']}: {s['target']} is now {s['verdict']}, "
            f"expected {s['expected']} ({s['reason']})"
        )
    return "\n\n".join(parts)
