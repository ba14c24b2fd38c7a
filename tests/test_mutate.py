"""The mutant generator of tools/mutate.py (fast: no server processes)."""

from __future__ import annotations

import ast
import importlib.util
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _load_mutate():
    spec = importlib.util.spec_from_file_location("tools_mutate", ROOT / "tools" / "mutate.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["tools_mutate"] = module
    spec.loader.exec_module(module)
    return module


mutate = _load_mutate()

SAMPLE = '''"""A sample module."""

import os
import sys

LIMIT = 10


def clamp(value, low=0):
    """Keep value within [low, LIMIT]."""
    if value < low:
        return low
    elif value >= LIMIT and not os.environ.get("FREE"):
        return LIMIT
    return value


class Server:
    """A class with a platform branch."""

    ready = True

    def start(self, name, port):
        self.log("start %s" % name, port)
        try:
            self.bind(port + 1,
                      name)
        except OSError:
            self.ready = False
            return None
        return self.ready

    if sys.platform == "win32":
        def windows_only(self):
            return 1 + 2

    if not hasattr(os, "fork"):
        def no_fork(self):
            return 3
'''


def _generator():
    return mutate.MutantGenerator(SAMPLE, "sample.py")


def test_mutants_differ_from_the_original_and_compile():
    mutants = _generator().generate()
    assert len(mutants) > 20
    original = ast.dump(ast.parse(SAMPLE))
    for m in mutants:
        assert m.source != SAMPLE
        assert ast.dump(ast.parse(m.source)) != original
        compile(m.source, "mutant.py", "exec")


def test_every_kind_of_mutation_is_made():
    kinds = {m.kind for m in _generator().generate()}
    assert {
        "compare",
        "bool",
        "number",
        "delete",
        "call",
        "boolop",
        "negate",
        "return",
        "string",
        "except",
        "swap",
        "not",
        "arith",
    } <= kinds


def test_descriptions_name_the_line_and_lines_are_kept():
    lines = SAMPLE.splitlines()
    for m in _generator().generate():
        assert re.match(rf"L{m.line}: \S", m.description), m.description
        assert 1 <= m.line <= len(lines)
        assert m.exact_lines
        assert m.source.count("\n") == SAMPLE.count("\n")


def test_sampling_is_deterministic_for_a_seed():
    first = [(m.id, m.source) for m in _generator().generate(8, seed=7)]
    again = [(m.id, m.source) for m in _generator().generate(8, seed=7)]
    other = [(m.id, m.source) for m in _generator().generate(8, seed=8)]
    assert first == again
    assert len(first) == 8
    assert [i for i, _ in first] == sorted(i for i, _ in first)
    assert first != other


def test_ids_are_stable_whatever_the_sample():
    gen = _generator()
    sites = {f"M{s.number:04d}": s for s in gen.sites}
    for m in _generator().generate(5, seed=3):
        alone, _ = gen.build(sites[m.id])
        assert alone is not None and alone.source == m.source


def test_docstrings_platform_branches_and_unchanged_code_are_skipped():
    for m in _generator().generate():
        assert "Keep value" not in m.description and "sample module" not in m.description
        assert m.scope not in ("Server.windows_only", "Server.no_fork")
        assert "win32" not in m.description and "fork" not in m.description


def test_restrictions():
    gen = _generator()
    in_clamp = gen.generate(functions=["clamp"])
    assert in_clamp and all(m.scope == "clamp" for m in in_clamp)
    assert all(m.scope != "clamp" for m in gen.generate(exclude_functions=["clamp"]))
    some = gen.generate(lines=(11, 12))
    assert some and all(11 <= m.line <= 12 for m in some)
    assert all(m.kind == "compare" for m in gen.generate(kinds=["compare"]))


def test_a_multi_line_call_can_be_deleted_and_swapped():
    by_kind = {(m.kind, m.line): m for m in _generator().generate()}
    deleted = by_kind["call", 26]
    assert "self.bind" not in deleted.source
    swapped = by_kind["swap", 26]
    assert "self.bind(name" in swapped.source.replace("(\n", "(").replace(" ", "")


def test_parse_lines():
    assert mutate.parse_lines("3-9") == (3, 9)
    assert mutate.parse_lines("4") == (4, 4)
    with pytest.raises(Exception, match="expected"):
        mutate.parse_lines("x")


def test_the_stdlib_socketserver_gives_mutants():
    path = mutate.module_source_path("socketserver")
    gen = mutate.MutantGenerator(path.read_text("utf-8"), str(path))
    mutants = gen.generate(10, seed=1)
    assert len(mutants) == 10
    assert all(m.exact_lines for m in mutants)
