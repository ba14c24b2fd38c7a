"""Mutation testing of the scenario catalog: how many broken implementations does it catch?

Run by hand, like a benchmark (never in CI)::

    python3 tools/mutate.py --module socketserver --max 60 --jobs 4
    python3 tools/mutate.py --module http.server --exclude-function CGIHTTPRequestHandler \\
        --exclude-function test --max 100 --with-cpython-suite
    python3 tools/mutate.py --module socketserver --list                # only print the mutants
    python3 tools/mutate.py --function 'ForkingMixIn.*' --seed 3 --max 20 --budget-seconds 600

It makes single-change mutants of a module (default: the running interpreter's stdlib
``socketserver.py``; ``--module http.server`` for ``http/server.py``; ``--source PATH`` for
another file) with the ``ast`` module, runs the selected scenarios (default
``socketserver/*`` or ``http/*``) with each mutant as the target, and compares every
observation with the stdlib baseline's.

- The baseline is observed twice per scenario; a scenario whose two observations differ
  (or that fails, hangs or errs on the baseline) is reported and excluded. An unmutated
  copy of the module is run as a control; a scenario that tells the copy from the stdlib
  is excluded too (it would "kill" every mutant).
- Per mutant, scenarios run one after another until one tells the mutant apart (differs,
  fails an invariant, hangs, or makes the harness err); that scenario is re-observed once,
  and the mutant is ``killed`` only if it tells it apart again, else the result is
  ``flaky`` and the next scenarios go on. A mutant whose module does not import is
  ``import-error`` and counted apart.
- ``--with-cpython-suite`` also runs ``python -m harness.cpython_suite`` (test_socketserver
  or test_httpservers) on every mutant, with a timeout, for comparison.

Reports go to ``--report-dir`` (default ``reports/mutation/``): ``mutation.json`` (every
mutant: id, line, description, status, what killed it) and ``mutation.md`` (kill rates,
survivors for a human to judge: equivalent mutant or catalog gap).

Kill rate = killed / (killed + survived), without and with import-error mutants (counted
as killed). ``flaky`` and ``not-run`` (the budget ran out) mutants are left out of both.

``--budget-seconds`` or a first Ctrl-C/SIGTERM stops the run cleanly (server processes
killed, the report written with the unfinished mutants as ``not-run``); a second Ctrl-C
interrupts at once. Exit status: 0 done, 2 bad usage, 3 processes were left behind (they
are killed and named), 130 interrupted.
"""

from __future__ import annotations

import argparse
import ast
import copy
import dataclasses
import fnmatch
import hashlib
import importlib.util
import json
import os
import random
import re
import shutil
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent
if str(PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(PROJECT_ROOT))

#: The stdlib modules a target may replace, with the CPython suite that tests each.
MODULES = {"socketserver": "test_socketserver", "http.server": "test_httpservers"}
#: The flag of ``harness.cpython_suite`` that substitutes each module.
SUITE_FLAGS = {"socketserver": "--socketserver", "http.server": "--http-server"}
#: Default scenario selection per module.
DEFAULT_SELECT = {"socketserver": "socketserver/*", "http.server": "http/*"}

STATUSES = ("killed", "survived", "flaky", "import-error", "not-run")

# ---------------------------------------------------------------------------------------
# Mutant generation
# ---------------------------------------------------------------------------------------

_CMP_SWAP: dict[type, type] = {
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
}
_BINOP_SWAP: dict[type, type] = {
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.FloorDiv,
    ast.FloorDiv: ast.Mult,
    ast.Div: ast.Mult,
}
_OP_TEXT: dict[type, str] = {
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Is: "is",
    ast.IsNot: "is not",
    ast.In: "in",
    ast.NotIn: "not in",
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.FloorDiv: "//",
    ast.Div: "/",
    ast.And: "and",
    ast.Or: "or",
}
#: Modules whose attributes ``hasattr(module, "x")`` platform tests may ask about.
_PLATFORM_MODULES = ("os", "socket", "sys", "signal", "select", "selectors", "threading")
#: Appended to string constants by the ``string`` mutation.
STRING_MARK = "XX"


@dataclasses.dataclass(frozen=True)
class Mutant:
    """One single-change mutant of a module's source."""

    id: str
    line: int
    col: int
    kind: str
    scope: str
    description: str
    source: str
    exact_lines: bool = True  # False when the source had to be regenerated by ast.unparse

    def to_json(self) -> dict[str, Any]:
        """The report fields (without the source)."""
        return {
            "id": self.id,
            "line": self.line,
            "col": self.col,
            "kind": self.kind,
            "scope": self.scope,
            "description": self.description,
            "exact_lines": self.exact_lines,
        }


@dataclasses.dataclass
class _Site:
    """A candidate mutation: node indexes (in ``ast.walk`` order) and their replacements."""

    number: int
    kind: str
    line: int
    col: int
    scope: str
    detail: str
    edits: list[tuple[int, ast.AST]]


def _short(node: ast.AST, width: int = 48) -> str:
    text = ast.unparse(node).splitlines()[0] if not isinstance(node, str) else node
    return text if len(text) <= width else text[: width - 3] + "..."


def _short_repr(value: Any, width: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= width else text[: width - 4] + "...'"


def _is_string_stmt(stmt: ast.stmt) -> bool:
    return (
        isinstance(stmt, ast.Expr)
        and isinstance(stmt.value, ast.Constant)
        and isinstance(stmt.value.value, str)
    )


def static_platform_value(test: ast.expr) -> bool | None:
    """The value of an ``if`` test that only asks about the platform, or None.

    Understands ``hasattr(os, "fork")`` (and other platform modules), ``sys.platform`` and
    ``os.name`` comparisons, ``sys.platform.startswith(...)``, ``__name__ == "__main__"``
    (False: the module is imported), ``not``, ``and``, ``or``.
    """
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        inner = static_platform_value(test.operand)
        return None if inner is None else not inner
    if isinstance(test, ast.BoolOp):
        values = [static_platform_value(v) for v in test.values]
        if any(v is None for v in values):
            return None
        return all(values) if isinstance(test.op, ast.And) else any(values)
    if (
        isinstance(test, ast.Call)
        and isinstance(test.func, ast.Name)
        and test.func.id == "hasattr"
        and len(test.args) == 2
        and isinstance(test.args[0], ast.Name)
        and test.args[0].id in _PLATFORM_MODULES
        and isinstance(test.args[1], ast.Constant)
        and isinstance(test.args[1].value, str)
    ):
        module = __import__(test.args[0].id)
        return hasattr(module, test.args[1].value)
    subject = _platform_subject(test)
    if subject is not None:
        return subject
    return None


def _platform_subject(test: ast.expr) -> bool | None:
    values = {"sys.platform": sys.platform, "os.name": os.name, "__name__": "<imported>"}
    if (
        isinstance(test, ast.Compare)
        and len(test.ops) == 1
        and isinstance(test.comparators[0], ast.Constant)
        and ast.unparse(test.left) in values
    ):
        left = values[ast.unparse(test.left)]
        right = test.comparators[0].value
        op = type(test.ops[0])
        if op is ast.Eq:
            return left == right
        if op is ast.NotEq:
            return left != right
        return None
    if (
        isinstance(test, ast.Call)
        and isinstance(test.func, ast.Attribute)
        and test.func.attr == "startswith"
        and ast.unparse(test.func.value) in ("sys.platform", "os.name")
        and len(test.args) == 1
        and isinstance(test.args[0], ast.Constant)
    ):
        return values[ast.unparse(test.func.value)].startswith(test.args[0].value)
    return None


def _mentions_all(stmt: ast.stmt) -> bool:
    return any(isinstance(n, ast.Name) and n.id == "__all__" for n in ast.walk(stmt))


def _handler_catches_import_error(handler: ast.ExceptHandler) -> bool:
    names = {"ImportError", "ModuleNotFoundError"}
    if handler.type is None:
        return False
    types = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return any(isinstance(t, ast.Name) and t.id in names for t in types)


class _SiteFinder:
    """Walks a module's AST and lists every candidate mutation, in source order."""

    def __init__(self, tree: ast.Module) -> None:
        self.tree = tree
        self.index = {id(node): i for i, node in enumerate(ast.walk(tree))}
        self.sites: list[_Site] = []
        self._scope: list[str] = []

    # -- bookkeeping --

    def _add(self, kind: str, node: ast.AST, detail: str, edits: list[tuple[ast.AST, ast.AST]]):
        line = getattr(node, "lineno", 0)
        self.sites.append(
            _Site(
                number=-1,
                kind=kind,
                line=line,
                col=getattr(node, "col_offset", 0),
                scope=".".join(self._scope) or "<module>",
                detail=f"L{line}: {detail}",
                edits=[(self.index[id(old)], new) for old, new in edits],
            )
        )

    def find(self) -> list[_Site]:
        """Every candidate, numbered in source order (line, column, then discovery)."""
        self._body(self.tree.body)
        order = sorted(
            range(len(self.sites)), key=lambda i: (self.sites[i].line, self.sites[i].col, i)
        )
        ordered = [self.sites[i] for i in order]
        for number, site in enumerate(ordered):
            site.number = number
        return ordered

    # -- statements --

    def _body(self, body: list[ast.stmt]) -> None:
        for stmt in body:
            if _is_string_stmt(stmt):
                continue  # a docstring, or a string used as a comment
            if _mentions_all(stmt):
                continue  # __all__ only matters to ``import *``
            self._stmt(stmt)

    def _stmt(self, stmt: ast.stmt) -> None:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            for decorator in stmt.decorator_list:
                self._expr(decorator)
            if not isinstance(stmt, ast.ClassDef):
                for default in stmt.args.defaults + [d for d in stmt.args.kw_defaults if d]:
                    self._expr(default)
            else:
                for base in stmt.bases:
                    self._expr(base)
            self._scope.append(stmt.name)
            self._body(stmt.body)
            self._scope.pop()
            return
        if isinstance(stmt, ast.If):
            known = static_platform_value(stmt.test)
            if known is not None:  # a platform branch: only the branch taken here runs
                self._body(stmt.body if known else stmt.orelse)
                return
        self._delete(stmt)
        if isinstance(stmt, (ast.If, ast.While)):
            self._add(
                "negate",
                stmt.test,
                f"negate condition {_short(stmt.test)!r}",
                [(stmt.test, ast.UnaryOp(op=ast.Not(), operand=copy.deepcopy(stmt.test)))],
            )
        if (
            isinstance(stmt, ast.Return)
            and stmt.value is not None
            and not (isinstance(stmt.value, ast.Constant) and stmt.value.value is None)
        ):
            self._add(
                "return",
                stmt,
                f"'return {_short(stmt.value, 36)}' -> 'return None'",
                [(stmt.value, ast.Constant(value=None))],
            )
        if isinstance(stmt, ast.Try):
            for handler in stmt.handlers:
                if _handler_catches_import_error(handler):
                    continue
                what = f"except {ast.unparse(handler.type)}" if handler.type else "except"
                if not (len(handler.body) == 1 and isinstance(handler.body[0], ast.Raise)):
                    edits: list[tuple[ast.AST, ast.AST]] = [(handler.body[0], ast.Raise())]
                    edits += [(s, ast.Pass()) for s in handler.body[1:]]
                    self._add("except", handler, f"{_short(what, 40)}: body -> raise", edits)
        # children: expressions of this statement, then nested bodies
        for field, value in ast.iter_fields(stmt):
            if field in ("body", "orelse", "finalbody") and isinstance(value, list):
                continue
            if field == "handlers":
                continue
            for child in value if isinstance(value, list) else [value]:
                if isinstance(child, ast.expr):
                    self._expr(child)
                elif isinstance(child, ast.withitem):
                    self._expr(child.context_expr)
                elif isinstance(child, ast.match_case):
                    self._body(child.body)
        for field in ("body", "orelse", "finalbody"):
            nested = getattr(stmt, field, None)
            if isinstance(nested, list) and nested and isinstance(nested[0], ast.stmt):
                self._body(nested)
        for handler in getattr(stmt, "handlers", []):
            if _handler_catches_import_error(handler):
                continue
            self._body(handler.body)

    def _delete(self, stmt: ast.stmt) -> None:
        if isinstance(stmt, (ast.Pass, ast.Import, ast.ImportFrom, ast.Global, ast.Nonlocal)):
            return
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, (ast.Call, ast.Await)):
            call = stmt.value
            self._add("call", stmt, f"remove call {_short(call)!r}", [(stmt, ast.Pass())])
            return
        what = repr(_short(stmt))
        if stmt.end_lineno and stmt.end_lineno > stmt.lineno:
            what += f" (to L{stmt.end_lineno})"
        self._add("delete", stmt, f"delete statement {what} -> pass", [(stmt, ast.Pass())])

    # -- expressions --

    def _expr(self, node: ast.expr) -> None:
        for sub in self._walk_expr(node):
            self._expr_site(sub)

    def _walk_expr(self, node: ast.AST) -> Iterator[ast.AST]:
        """Expression nodes, outer first, not entering f-strings or lambdas' defaults."""
        yield node
        if isinstance(node, ast.JoinedStr):
            for value in node.values:
                if isinstance(value, ast.FormattedValue):
                    yield from self._walk_expr(value.value)
            return
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.expr, ast.keyword, ast.comprehension)):
                yield from self._walk_expr(child)

    def _expr_site(self, node: ast.AST) -> None:
        if isinstance(node, ast.Compare):
            for k, op in enumerate(node.ops):
                swap = _CMP_SWAP.get(type(op))
                if swap is None:
                    continue
                new = copy.deepcopy(node)
                new.ops[k] = swap()
                self._add(
                    "compare",
                    node,
                    f"{_OP_TEXT[type(op)]!r} -> {_OP_TEXT[swap]!r} in {_short(node, 36)!r}",
                    [(node, new)],
                )
        elif isinstance(node, ast.BoolOp):
            other = ast.Or() if isinstance(node.op, ast.And) else ast.And()
            new = copy.deepcopy(node)
            new.op = other
            self._add(
                "boolop",
                node,
                f"{_OP_TEXT[type(node.op)]!r} -> {_OP_TEXT[type(other)]!r} in {_short(node, 36)!r}",
                [(node, new)],
            )
        elif isinstance(node, ast.BinOp) and type(node.op) in _BINOP_SWAP:
            # '%' on strings is formatting; '+' on strings is concatenation: both stay.
            swap = _BINOP_SWAP[type(node.op)]
            new = copy.deepcopy(node)
            new.op = swap()
            self._add(
                "arith",
                node,
                f"{_OP_TEXT[type(node.op)]!r} -> {_OP_TEXT[swap]!r} in {_short(node, 36)!r}",
                [(node, new)],
            )
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            self._add(
                "not",
                node,
                f"{_short(node, 36)!r} -> {_short(node.operand, 36)!r}",
                [(node, copy.deepcopy(node.operand))],
            )
        elif isinstance(node, ast.Call):
            positional = [a for a in node.args if not isinstance(a, ast.Starred)]
            if len(positional) == len(node.args) >= 2 and ast.dump(node.args[0]) != ast.dump(
                node.args[1]
            ):
                a, b = node.args[0], node.args[1]
                self._add(
                    "swap",
                    node,
                    f"swap arguments {_short(a, 20)!r}, {_short(b, 20)!r} of {_short(node.func, 30)}()",
                    [(a, copy.deepcopy(b)), (b, copy.deepcopy(a))],
                )
        elif isinstance(node, ast.Constant):
            self._constant(node)

    def _constant(self, node: ast.Constant) -> None:
        value = node.value
        if isinstance(value, bool):
            self._add(
                "bool", node, f"{value} -> {not value}", [(node, ast.Constant(value=not value))]
            )
        elif isinstance(value, (int, float)):
            seen = {value}
            for new in (value + 1, value - 1, 0):
                if new in seen:
                    continue
                seen.add(new)
                self._add("number", node, f"{value!r} -> {new!r}", [(node, _number(new))])
        elif isinstance(value, (str, bytes)):
            mark: str | bytes = STRING_MARK if isinstance(value, str) else STRING_MARK.encode()
            new_value = value + mark  # type: ignore[operator]
            self._add(
                "string",
                node,
                f"string {_short_repr(value)} -> {_short_repr(new_value)}",
                [(node, ast.Constant(value=new_value))],
            )


def _number(value: float) -> ast.expr:
    """A numeric constant as the parser builds it: ``-1`` is ``-`` applied to ``1``."""
    if value < 0:
        return ast.UnaryOp(op=ast.USub(), operand=ast.Constant(value=-value))
    return ast.Constant(value=value)


def _parents(tree: ast.AST) -> dict[int, tuple[ast.AST, str, int | None]]:
    """Node index (``ast.walk`` order) -> (parent, field, position in a list field or None)."""
    index = {id(node): i for i, node in enumerate(ast.walk(tree))}
    out: dict[int, tuple[ast.AST, str, int | None]] = {}
    for parent in ast.walk(tree):
        for field, value in ast.iter_fields(parent):
            if isinstance(value, list):
                for k, item in enumerate(value):
                    if isinstance(item, ast.AST):
                        out[index[id(item)]] = (parent, field, k)
            elif isinstance(value, ast.AST):
                out[index[id(value)]] = (parent, field, None)
    return out


def _set_child(parent: ast.AST, field: str, position: int | None, node: ast.AST) -> ast.AST:
    if position is None:
        old = getattr(parent, field)
        setattr(parent, field, node)
    else:
        container = getattr(parent, field)
        old = container[position]
        container[position] = node
    return old


def _code_signature(code: Any) -> tuple[Any, ...]:
    """What a code object does, without its line table (so moved lines compare equal)."""
    consts = tuple(
        _code_signature(c) if hasattr(c, "co_code") else (type(c).__name__, repr(c))
        for c in code.co_consts
    )
    return (
        code.co_code,
        consts,
        code.co_names,
        code.co_varnames,
        code.co_freevars,
        code.co_cellvars,
        code.co_flags,
        code.co_argcount,
        code.co_kwonlyargcount,
        getattr(code, "co_exceptiontable", b""),
        getattr(code, "co_qualname", code.co_name),
    )


class MutantGenerator:
    """Single-change mutants of one module's source, with ``ast``.

    ``candidates()`` lists every possible mutation in source order (ids ``M0000``, ...,
    stable for a given source); ``generate()`` samples them with a seed, builds each one's
    source and keeps those that compile and differ from the original in bytecode.
    """

    def __init__(self, source: str, filename: str = "<mutant>") -> None:
        self.source = source
        self.filename = filename
        self.tree = ast.parse(source, filename)
        self.sites = _SiteFinder(self.tree).find()
        self._nodes = list(ast.walk(self.tree))
        self._parents = _parents(self.tree)
        self._lines = source.encode("utf-8").splitlines(keepends=True)
        self._original = _code_signature(compile(self.tree, filename, "exec"))
        self.rejected: dict[str, int] = {}

    def candidates(
        self,
        lines: tuple[int, int] | None = None,
        functions: Iterable[str] = (),
        exclude_functions: Iterable[str] = (),
        kinds: Iterable[str] = (),
    ) -> list[_Site]:
        """The candidate mutations, restricted by line range, scope and kind."""
        functions, exclude_functions, kinds = list(functions), list(exclude_functions), set(kinds)
        out = []
        for site in self.sites:
            if lines and not lines[0] <= site.line <= lines[1]:
                continue
            if functions and not any(_scope_matches(site.scope, f) for f in functions):
                continue
            if any(_scope_matches(site.scope, f) for f in exclude_functions):
                continue
            if kinds and site.kind not in kinds:
                continue
            out.append(site)
        return out

    def generate(
        self,
        max_count: int | None = None,
        seed: int = 0,
        lines: tuple[int, int] | None = None,
        functions: Iterable[str] = (),
        exclude_functions: Iterable[str] = (),
        kinds: Iterable[str] = (),
    ) -> list[Mutant]:
        """Up to ``max_count`` valid mutants (all when None), sampled with ``seed``, in id order."""
        pool = self.candidates(lines, functions, exclude_functions, kinds)
        order = list(range(len(pool)))
        random.Random(seed).shuffle(order)
        kept: list[Mutant] = []
        seen: set[tuple[Any, ...]] = set()
        self.rejected = {}
        for i in order:
            if max_count is not None and len(kept) >= max_count:
                break
            mutant, why = self.build(pool[i], seen)
            if mutant is None:
                self.rejected[why] = self.rejected.get(why, 0) + 1
            else:
                kept.append(mutant)
        kept.sort(key=lambda m: m.id)
        return kept

    def build(
        self, site: _Site, seen: set[tuple[Any, ...]] | None = None
    ) -> tuple[Mutant | None, str]:
        """The mutant of one candidate, or (None, why it was rejected)."""
        expected = self._with_edits(site, ast.dump)
        source, exact = self._splice(site), True
        try:
            parsed = ast.parse(source, self.filename)
            if ast.dump(parsed) != expected:
                raise SyntaxError("splice did not give the intended tree")
        except SyntaxError:
            source, exact = self._with_edits(site, ast.unparse) + "\n", False
        try:
            code = compile(source, self.filename, "exec")
        except (SyntaxError, ValueError):
            return None, "does not compile"
        signature = _code_signature(code)
        if signature == self._original:
            return None, "identical bytecode"
        if seen is not None:
            if signature in seen:
                return None, "duplicate of another mutant"
            seen.add(signature)
        mutant = Mutant(
            id=f"M{site.number:04d}",
            line=site.line,
            col=site.col,
            kind=site.kind,
            scope=site.scope,
            description=site.detail,
            source=source,
            exact_lines=exact,
        )
        return mutant, ""

    def _with_edits(self, site: _Site, function: Any) -> Any:
        """``function(tree)`` with the site's edits applied to the tree, then undone."""
        undo = []
        for index, new in site.edits:
            parent, field, position = self._parents[index]
            undo.append((parent, field, position, _set_child(parent, field, position, new)))
        try:
            return function(self.tree)
        finally:
            for parent, field, position, old in reversed(undo):
                _set_child(parent, field, position, old)

    def _splice(self, site: _Site) -> str:
        """The source with each edited node's text replaced, keeping every line number."""
        lines = list(self._lines)
        edits = sorted(
            ((self._nodes[i], new) for i, new in site.edits),
            key=lambda e: (e[0].lineno, e[0].col_offset),
            reverse=True,
        )
        for old, new in edits:
            first, last = old.lineno - 1, old.end_lineno - 1
            span = last - first
            if isinstance(new, ast.stmt):
                text = ast.unparse(new) + "\n" * span
            elif isinstance(new, (ast.Constant, ast.Name)) and span == 0:
                text = ast.unparse(new)
            else:
                text = "(" + ast.unparse(new) + "\n" * span + ")"
            head = lines[first][: old.col_offset]
            tail = lines[last][old.end_col_offset :]
            if isinstance(new, ast.stmt) and lines[first][old.col_offset :].startswith(b"elif"):
                text = "else: " + text  # an ``elif`` is an ``if`` alone in an ``else``
            lines[first : last + 1] = [head + text.encode("utf-8") + tail]
        return b"".join(lines).decode("utf-8")


def _scope_matches(scope: str, pattern: str) -> bool:
    parts = scope.split(".")
    return (
        fnmatch.fnmatchcase(scope, pattern) or pattern in parts or scope.startswith(pattern + ".")
    )


def module_source_path(module: str) -> Path:
    """The file of a stdlib module of the running interpreter (``http.server`` included)."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.origin:
        raise SystemExit(f"mutate: cannot find module {module!r}")
    return Path(spec.origin)


def parse_lines(text: str) -> tuple[int, int]:
    """``A-B`` (or ``A``) as an inclusive line range."""
    match = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+))?\s*", text)
    if not match:
        raise argparse.ArgumentTypeError(f"--lines {text!r}: expected A-B")
    start = int(match.group(1))
    end = int(match.group(2) or start)
    if end < start:
        raise argparse.ArgumentTypeError(f"--lines {text!r}: end before start")
    return start, end


# ---------------------------------------------------------------------------------------
# Running mutants against the catalog (and the CPython suite)
# ---------------------------------------------------------------------------------------

_IMPORT_CHECK = (
    "import sys; from harness.substitution import install_module; "
    "install_module(sys.argv[1], sys.argv[2])"
)


#: Runs the command in argv as a child subreaper (Linux), so whatever the command forks
#: and leaves behind comes back to this wrapper, which kills and reaps it before exiting
#: with the command's status: nothing the CPython suite starts outlives its run.
_REAPING_WRAPPER = r"""
import ctypes, os, signal, subprocess, sys
try:
    ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)
except (OSError, AttributeError):
    pass
code = subprocess.call(sys.argv[1:])
import psutil
for _ in range(50):
    children = psutil.Process().children(recursive=True)
    if not children:
        break
    for child in children:
        try:
            os.kill(child.pid, signal.SIGKILL)
        except OSError:
            pass
    while True:
        try:
            if os.waitpid(-1, os.WNOHANG)[0] == 0:
                break
        except ChildProcessError:
            break
    psutil.wait_procs(children, timeout=0.1)
sys.exit(code)
"""


@dataclasses.dataclass
class MutantResult:
    """What the catalog (and maybe the CPython suite) made of one mutant."""

    mutant: Mutant
    status: str = "not-run"
    killed_by: str = ""
    how: str = ""  # differs | fails | hang | error | import
    keys: list[str] = dataclasses.field(default_factory=list)
    detail: str = ""
    flaky_scenarios: list[str] = dataclasses.field(default_factory=list)
    scenarios_run: int = 0
    duration_s: float = 0.0
    suite: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        """The report row."""
        row = self.mutant.to_json()
        row.update(
            status=self.status,
            killed_by=self.killed_by,
            how=self.how,
            differing_keys=self.keys,
            detail=self.detail,
            flaky_scenarios=self.flaky_scenarios,
            scenarios_run=self.scenarios_run,
            duration_s=round(self.duration_s, 3),
            cpython_suite=self.suite,
        )
        return row


@dataclasses.dataclass
class RunSettings:
    """How a mutation run is carried out."""

    module: str
    source_path: Path
    jobs: int = 4
    budget_seconds: float | None = None
    with_suite: bool = False
    suite_timeout: float = 60.0
    import_timeout: float = 30.0
    quiet: bool = False
    #: Fuzz-only mode (``--fuzz SECONDS``): each mutant is told apart by ``python -m harness
    #: fuzz`` alone, for this long, instead of by the scenarios.
    fuzz_seconds: float | None = None
    fuzz_family: str = "http"
    fuzz_seed: int = 0


def tell_apart(base: Any, got: Any) -> tuple[str, list[str], str] | None:
    """How an observation of a mutant differs from the baseline's, or None if it does not.

    Returns ``(how, differing keys, detail)``; ``how`` is the verdict ``harness.compare.decide``
    gives the mutant on this one run: ``hang``, ``error`` (the harness could not run the
    scenario on the mutant), ``fails`` (an invariant broke, or the mutant did not start) or
    ``differs`` (not yet confirmed: the caller reruns).
    """
    from harness.compare import Verdict, decide, readable_diff

    decision = decide((base, got))
    if decision.verdict in (Verdict.SAME, Verdict.EXPLAINED):
        return None
    if decision.verdict is Verdict.DIFFERS:
        diff = readable_diff(base.observation, got.observation, ("stdlib", "mutant"))
        return "differs", list(decision.keys), diff[:1500]
    lines = [line for line in decision.reason.strip().splitlines() if line.strip()]
    return decision.verdict.value, [], (lines[-1] if lines else decision.verdict.value)[:300]


def _unpath(observation: dict[str, Any], mutant_path: Path, original: Path) -> dict[str, Any]:
    """The observation with the mutant's file path written as the original module's."""
    text = json.dumps(observation)
    for old, new in (
        (str(mutant_path), str(original)),
        (str(mutant_path.parent), str(original.parent)),
    ):
        text = text.replace(json.dumps(old)[1:-1], json.dumps(new)[1:-1])
    return json.loads(text)


class MutationRun:
    """Observes the baseline, then runs every mutant through the scenarios, ``jobs`` at once."""

    def __init__(
        self, mutants: list[Mutant], scenarios: list[Any], baseline: Any, settings: RunSettings
    ):
        self.mutants = mutants
        self.scenarios = scenarios
        self.baseline = baseline
        self.settings = settings
        self.results = {m.id: MutantResult(m) for m in mutants}
        self.base_obs: dict[str, Any] = {}
        self.excluded: list[dict[str, str]] = []
        self.kills: dict[str, int] = {}
        self.suite_note = ""
        self.fuzz_note = ""
        self.suite_enabled = settings.with_suite
        self.stopped_early = False
        self.interrupted = False
        self.started = time.monotonic()
        self.done = 0
        self.workdir = Path(tempfile.mkdtemp(prefix="mutants-"))
        self._limiter: Any = None

    # -- helpers --

    def _say(self, text: str) -> None:
        if not self.settings.quiet:
            elapsed = time.monotonic() - self.started
            print(f"{elapsed:7.1f}s  {text}", file=sys.stderr, flush=True)

    def _write_module(self, name: str, source: str) -> Path:
        folder = self.workdir / name
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / self.settings.source_path.name
        path.write_text(source, encoding="utf-8")
        return path

    def _target(self, name: str, path: Path) -> Any:
        from harness.targets import Target

        return Target(name, ((self.settings.module, str(path)),), self.baseline.python)

    async def _observe(self, scenario: Any, target: Any, path: Path | None = None) -> Any:
        from harness.engine import observe

        async with self._limiter:
            got = await observe(scenario, target)
        if path is not None:
            got.observation = _unpath(got.observation, path, self.settings.source_path)
        return got

    # -- phases --

    async def run(self) -> None:
        """All phases, within the budget; whatever is unfinished when it ends stays not-run."""
        import trio

        self._limiter = trio.CapacityLimiter(max(1, self.settings.jobs))
        budget = self.settings.budget_seconds
        remaining = budget - (time.monotonic() - self.started) if budget else float("inf")
        with trio.move_on_after(max(0.0, remaining)) as scope:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._stop_on_signal, scope)
                if self.settings.fuzz_seconds is not None:
                    if await self._fuzz_control():
                        await self._mutant_phase()
                else:
                    await self._baseline_phase()
                    if self.scenarios:
                        await self._mutant_phase()
                nursery.cancel_scope.cancel()
        if scope.cancelled_caught:
            self.stopped_early = True
            why = "interrupted" if self.interrupted else "budget spent"
            self._say(f"{why}: stopped; unfinished mutants are not-run")

    async def _stop_on_signal(self, scope: Any) -> None:
        """The first SIGINT/SIGTERM stops the run cleanly (a second one interrupts it)."""
        import trio

        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for _ in signals:
                self.interrupted = True
                scope.cancel()
                return

    async def _baseline_phase(self) -> None:
        import trio

        control_path = self._write_module("control", self.settings.source_path.read_text("utf-8"))
        control = self._target("control", control_path)
        self._say(
            f"baseline: {len(self.scenarios)} scenarios, observed twice, plus an unmutated copy"
        )
        observed: dict[tuple[str, int], Any] = {}

        async def grab(scenario: Any, k: int) -> None:
            if k < 2:
                observed[scenario.id, k] = await self._observe(scenario, self.baseline)
            else:
                observed[scenario.id, k] = await self._observe(scenario, control, control_path)

        async with trio.open_nursery() as nursery:
            for s in self.scenarios:
                for k in range(3):
                    nursery.start_soon(grab, s, k)
            if self.suite_enabled:
                nursery.start_soon(self._suite_control, control_path)
        kept = []
        for s in self.scenarios:
            first, second, copy_ = (observed[s.id, k] for k in range(3))
            reason = ""
            if first.status != "completed" or first.violations:
                reason = (
                    f"the baseline {first.status}: {first.error or '; '.join(first.violations)}"
                )
            elif apart := tell_apart(first, second):
                how, keys, _ = apart
                reason = f"the baseline is not stable across two runs: {how} {', '.join(keys)}"
            elif apart := tell_apart(first, copy_):
                how, keys, _ = apart
                reason = f"an unmutated copy of the module {how} ({', '.join(keys)})"
            if reason:
                self.excluded.append({"id": s.id, "reason": reason[:400]})
                self._say(f"excluded {s.id}: {reason[:200]}")
            else:
                self.base_obs[s.id] = first
                kept.append(s)
        self.scenarios = kept
        self._say(f"baseline done: {len(kept)} scenarios usable, {len(self.excluded)} excluded")

    async def _suite_control(self, control_path: Path) -> None:
        outcome = await self._run_suite(control_path)
        if outcome["status"] != "survived":
            self.suite_enabled = False
            self.suite_note = (
                f"the CPython suite does not pass on an unmutated copy ({outcome['detail']}); "
                "not run on the mutants"
            )
            self._say(self.suite_note)

    async def _mutant_phase(self) -> None:
        import trio

        queue = list(self.mutants)
        queue.reverse()

        async def worker() -> None:
            while queue:
                mutant = queue.pop()
                try:
                    await self._one(mutant)
                except Exception:  # a bug of this tool: keep the run, report the mutant
                    text = traceback.format_exc()
                    print(text, file=sys.stderr)
                    self.results[mutant.id].detail = "mutate.py error: " + text.strip()[-300:]

        self._say(f"running {len(self.mutants)} mutants, {self.settings.jobs} at a time")
        async with trio.open_nursery() as nursery:
            for _ in range(max(1, self.settings.jobs)):
                nursery.start_soon(worker)

    def _order(self) -> list[Any]:
        """Scenarios that killed most so far first (then the quickest), to kill sooner."""
        return sorted(
            self.scenarios,
            key=lambda s: (-self.kills.get(s.id, 0), self.base_obs[s.id].duration, s.id),
        )

    async def _one(self, mutant: Mutant) -> None:
        started = time.monotonic()
        result = MutantResult(mutant)
        path = self._write_module(mutant.id, mutant.source)
        target = self._target(f"mutant-{mutant.id}", path)
        problem = await self._import_error(path)
        if problem:
            result.status, result.how, result.detail = "import-error", "import", problem
        elif self.settings.fuzz_seconds is not None:
            await self._fuzz_one(result, target)
        else:
            for s in self._order():
                result.scenarios_run += 1
                got = await self._observe(s, target, path)
                apart = tell_apart(self.base_obs[s.id], got)
                if apart is None:
                    continue
                again = await self._observe(s, target, path)
                if tell_apart(self.base_obs[s.id], again) is None:
                    result.flaky_scenarios.append(s.id)
                    continue
                result.status, result.killed_by = "killed", s.id
                result.how, result.keys, result.detail = apart
                self.kills[s.id] = self.kills.get(s.id, 0) + 1
                break
            else:
                result.status = "flaky" if result.flaky_scenarios else "survived"
        if self.suite_enabled:
            if result.status == "import-error":
                result.suite = {"status": "import-error", "detail": problem, "duration_s": 0.0}
            else:
                result.suite = await self._run_suite(path)
        result.duration_s = time.monotonic() - started
        self.results[mutant.id] = result
        self.done += 1
        shutil.rmtree(path.parent, ignore_errors=True)
        where = f"by {result.killed_by} ({result.how})" if result.killed_by else ""
        suite = f" [suite: {result.suite['status']}]" if result.suite else ""
        self._say(
            f"[{self.done:>3}/{len(self.mutants)}] {mutant.id} {result.status:<12} {where}"
            f"{suite}  {mutant.description}"
        )

    # -- fuzz-only mode --

    async def _fuzz(self, target: Any, name: str) -> dict[str, Any]:
        """One ``python -m harness fuzz`` campaign of ``target`` against the baseline:
        ``{"exit": status, "findings": [(verdict, scenario, reproducer)], "cases": n}``."""
        import trio

        from harness.host import kill_tree, reap_pids

        settings = self.settings
        report_dir = Path(tempfile.mkdtemp(prefix=f"fuzz-{name}-", dir=self.workdir))
        argv = [
            *(sys.executable, "-m", "harness", "fuzz"),
            *("--target", target.spec_string(), "--baseline", self.baseline.spec_string()),
            *("--family", settings.fuzz_family, "--duration", f"{settings.fuzz_seconds:g}"),
            *("--seed", str(settings.fuzz_seed), "--max-findings", "1"),
            *("--shrink-seconds", "10", "--quiet", "--report-dir", str(report_dir)),
        ]
        killed: list[int] = []

        async def kill(process: Any) -> None:
            killed.extend(kill_tree(process.pid))

        try:
            async with self._limiter:
                done = await trio.run_process(
                    argv,
                    capture_stdout=True,
                    capture_stderr=True,
                    check=False,
                    cwd=str(PROJECT_ROOT),
                    start_new_session=True,
                    deliver_cancel=kill,
                )
            outcome: dict[str, Any] = {"exit": done.returncode, "findings": [], "cases": 0}
            try:
                report = json.loads((report_dir / "report.json").read_text())
            except (OSError, ValueError):
                tail = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:]
                outcome["error"] = (tail or [f"exit status {done.returncode}"])[0][:300]
                return outcome
            outcome["cases"] = report.get("fuzz", {}).get("cases", 0)
            for row in report.get("results", []):
                if row.get("verdict") in ("differs", "flaky"):
                    outcome["findings"].append(
                        (row["verdict"], row["scenario"], row.get("reproducer", ""))
                    )
            return outcome
        finally:
            if killed:
                with trio.CancelScope(shield=True):
                    await trio.to_thread.run_sync(reap_pids, killed)
            shutil.rmtree(report_dir, ignore_errors=True)

    async def _fuzz_control(self) -> bool:
        """Fuzz an unmutated copy first: it must come out clean, or no mutant can be judged."""
        control_path = self._write_module("control", self.settings.source_path.read_text("utf-8"))
        self._say(
            f"fuzz-only: {self.settings.fuzz_family} for {self.settings.fuzz_seconds:g} s per "
            "mutant; an unmutated copy first"
        )
        outcome = await self._fuzz(self._target("control", control_path), "control")
        if outcome["exit"] != 0:
            what = outcome.get("error") or outcome["findings"]
            self.fuzz_note = f"fuzzing an unmutated copy did not come out clean: {what}"
            self._say(self.fuzz_note)
            return False
        self._say(f"the unmutated copy is clean ({outcome['cases']} cases)")
        return True

    async def _fuzz_one(self, result: MutantResult, target: Any) -> None:
        """Killed when the campaign confirms a difference (``differs``); flaky when it only
        saw one that did not repeat; survived when it found nothing."""
        outcome = await self._fuzz(target, result.mutant.id)
        result.scenarios_run = outcome["cases"]
        confirmed = [f for f in outcome["findings"] if f[0] == "differs"]
        if confirmed:
            _, scenario, reproducer = confirmed[0]
            result.status, result.killed_by, result.how = "killed", scenario, "differs"
            result.detail = reproducer
            family = scenario.split("/")[1]
            self.kills[f"fuzz/{family}"] = self.kills.get(f"fuzz/{family}", 0) + 1
        elif outcome["findings"]:
            result.status = "flaky"
            result.flaky_scenarios = [f[1] for f in outcome["findings"]]
        elif outcome["exit"] == 0:
            result.status = "survived"
        else:
            result.status, result.how = "flaky", "error"
            result.detail = outcome.get("error", f"fuzz exit status {outcome['exit']}")

    async def _import_error(self, path: Path) -> str:
        """Why the mutant does not import (last line of the error), or ''."""
        import trio

        from harness.host import agent_environment

        argv = [self.baseline.python, "-c", _IMPORT_CHECK, self.settings.module, str(path)]
        done = None
        async with self._limiter:
            with trio.move_on_after(self.settings.import_timeout):
                done = await trio.run_process(
                    argv,
                    capture_stdout=True,
                    capture_stderr=True,
                    check=False,
                    env=agent_environment(),
                    cwd=str(path.parent),
                )
        if done is None:
            return f"importing took over {self.settings.import_timeout:g} s"
        if done.returncode == 0:
            return ""
        lines = done.stderr.decode("utf-8", "replace").strip().splitlines()
        return (lines[-1] if lines else f"exit status {done.returncode}")[:300]

    async def _run_suite(self, path: Path) -> dict[str, Any]:
        """CPython's own suite with the module substituted: killed, survived or timeout."""
        import trio

        from harness.host import agent_environment, kill_tree, reap_pids

        suite = MODULES[self.settings.module]
        argv = [
            self.baseline.python,
            "-c",
            _REAPING_WRAPPER,
            self.baseline.python,
            "-m",
            "harness.cpython_suite",
            suite,
            SUITE_FLAGS[self.settings.module],
            str(path),
        ]
        cwd = Path(tempfile.mkdtemp(prefix="suite-", dir=self.workdir))

        killed: list[int] = []

        async def kill(process: Any) -> None:
            # trio cancels this as soon as the process is gone: reap after run_process.
            killed.extend(kill_tree(process.pid))

        started = time.monotonic()
        outcome: dict[str, Any] = {"status": "killed", "detail": "", "duration_s": 0.0}
        try:
            done = None
            async with self._limiter:
                with trio.move_on_after(self.settings.suite_timeout):
                    done = await trio.run_process(
                        argv,
                        capture_stdout=True,
                        capture_stderr=True,
                        check=False,
                        env=agent_environment(),
                        cwd=str(cwd),
                        start_new_session=True,
                        deliver_cancel=kill,
                    )
            if done is None:
                outcome["detail"] = f"timeout after {self.settings.suite_timeout:g} s"
            else:
                summary = done.stdout.decode("utf-8", "replace").strip().splitlines()
                outcome["detail"] = summary[-1] if summary else f"exit status {done.returncode}"
                if done.returncode == 0:
                    outcome["status"] = "survived"
                else:
                    failed = re.findall(
                        r"^(?:FAIL|ERROR): (\S+)", done.stderr.decode("utf-8", "replace"), re.M
                    )
                    if failed:
                        outcome["failed_tests"] = sorted(set(failed))[:10]
        finally:
            if killed:  # they became ours (a subreaper) when the wrapper died
                with trio.CancelScope(shield=True):
                    await trio.to_thread.run_sync(reap_pids, killed)
            shutil.rmtree(cwd, ignore_errors=True)
        outcome["duration_s"] = round(time.monotonic() - started, 3)
        return outcome

    def cleanup(self) -> None:
        """Remove the mutants' directory."""
        shutil.rmtree(self.workdir, ignore_errors=True)


# ---------------------------------------------------------------------------------------
# Reports
# ---------------------------------------------------------------------------------------


def _rate(killed: int, total: int) -> dict[str, Any]:
    return {"killed": killed, "total": total, "rate": round(killed / total, 4) if total else None}


def _percent(rate: dict[str, Any]) -> str:
    if rate["rate"] is None:
        return "n/a"
    return f"{100 * rate['rate']:.1f}% ({rate['killed']}/{rate['total']})"


def summarize(results: list[MutantResult]) -> dict[str, Any]:
    """Counts and kill rates of the catalog and, where it ran, of the CPython suite.

    Both rates are over the mutants the catalog decided (killed, survived, import-error):
    flaky and not-run mutants are left out of both, so the two rates compare like for like.
    """
    counts = {s: sum(r.status == s for r in results) for s in STATUSES}
    killed, survived, imp = counts["killed"], counts["survived"], counts["import-error"]
    out: dict[str, Any] = {
        "counts": counts,
        "kill_rate": {
            "without_import_errors": _rate(killed, killed + survived),
            "with_import_errors": _rate(killed + imp, killed + survived + imp),
        },
    }
    decided = [r for r in results if r.status in ("killed", "survived", "import-error")]
    if any(r.suite for r in decided):
        with_suite = [r for r in decided if r.suite]
        non_import = [r for r in with_suite if r.status != "import-error"]
        suite_killed = sum(r.suite["status"] == "killed" for r in non_import)  # type: ignore[index]
        imports = len(with_suite) - len(non_import)
        out["cpython_suite"] = {
            "counts": {
                s: sum(r.suite["status"] == s for r in with_suite)  # type: ignore[index]
                for s in ("killed", "survived", "import-error")
            },
            "kill_rate": {
                "without_import_errors": _rate(suite_killed, len(non_import)),
                "with_import_errors": _rate(suite_killed + imports, len(with_suite)),
            },
        }
    return out


def build_report(run: MutationRun, generation: dict[str, Any], argv: list[str]) -> dict[str, Any]:
    """The JSON report: the run's settings, figures and every mutant."""
    results = [run.results[m.id] for m in run.mutants]
    report: dict[str, Any] = {
        "schema": 1,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": argv,
        "python": sys.version.split()[0],
        "module": run.settings.module,
        "source": str(run.settings.source_path),
        "source_sha256": hashlib.sha256(run.settings.source_path.read_bytes()).hexdigest(),
        "generation": generation,
        "baseline": run.baseline.spec_string(),
        "scenarios": sorted(run.base_obs),
        "excluded_scenarios": run.excluded,
        "duration_s": round(time.monotonic() - run.started, 1),
        "stopped_early": run.stopped_early,
        "cpython_suite_note": run.suite_note,
        "fuzz_note": run.fuzz_note,
        "kills_by_scenario": dict(sorted(run.kills.items(), key=lambda kv: (-kv[1], kv[0]))),
    }
    report.update(summarize(results))
    report["mutants"] = [r.to_json() for r in results]
    return report


def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render_markdown(report: dict[str, Any]) -> str:
    """The Markdown summary: kill rates, kills by scenario, survivors to judge."""
    rates = report["kill_rate"]
    suite = report.get("cpython_suite")
    counts = report["counts"]
    lines = [
        f"# Mutation testing: `{report['module']}`",
        "",
        f"- source: `{report['source']}` (sha256 {report['source_sha256'][:12]}), "
        f"Python {report['python']}",
        f"- mutants: {len(report['mutants'])} (seed {report['generation']['seed']}, "
        f"{report['generation']['candidates']} candidates)",
        f"- scenarios: {len(report['scenarios'])} used, "
        f"{len(report['excluded_scenarios'])} excluded; baseline `{report['baseline']}`",
        f"- duration: {report['duration_s']} s"
        + (" (stopped by the budget)" if report["stopped_early"] else ""),
        "- statuses: " + ", ".join(f"{k} {v}" for k, v in counts.items()),
    ]
    fuzz = report["generation"].get("fuzz")
    if fuzz:
        lines.append(
            f"- fuzzing alone (no scenarios): `--family {fuzz['family']}`, {fuzz['seconds']:g} s "
            f"per mutant, seed {fuzz['seed']}; `killed_by` names the finding"
            + (f"; {report['fuzz_note']}" if report.get("fuzz_note") else "")
        )
    lines += [
        "",
        "## Kill rates",
        "",
        "| | catalog | CPython suite |",
        "|---|---|---|",
    ]
    for key, label in (
        ("without_import_errors", "killed / (killed + survived), import errors left out"),
        ("with_import_errors", "import errors counted as killed"),
    ):
        theirs = _percent(suite["kill_rate"][key]) if suite else "not run"
        lines.append(f"| {label} | {_percent(rates[key])} | {theirs} |")
    if report.get("cpython_suite_note"):
        lines += ["", f"CPython suite: {report['cpython_suite_note']}"]
    if report["excluded_scenarios"]:
        lines += ["", "## Excluded scenarios", ""]
        lines += [f"- `{e['id']}`: {_md_cell(e['reason'])}" for e in report["excluded_scenarios"]]
    if report["kills_by_scenario"]:
        lines += ["", "## Kills by scenario (first scenario to tell the mutant apart)", ""]
        lines += ["| scenario | kills |", "|---|---|"]
        lines += [f"| `{k}` | {v} |" for k, v in report["kills_by_scenario"].items()]
    survivors = [m for m in report["mutants"] if m["status"] == "survived"]
    lines += [
        "",
        f"## Survivors ({len(survivors)}): equivalent mutant, or a gap in the catalog?",
        "",
    ]
    if survivors:
        lines += ["| id | line | scope | change | CPython suite |", "|---|---|---|---|---|"]
        for m in survivors:
            theirs = (m["cpython_suite"] or {}).get("status", "")
            lines.append(
                f"| {m['id']} | {m['line']} | `{m['scope']}` | {_md_cell(m['description'])} | {theirs} |"
            )
        gaps = [m for m in survivors if (m["cpython_suite"] or {}).get("status") == "killed"]
        if gaps:
            lines += ["", "Killed by the CPython suite but not by the catalog (gaps first):", ""]
            lines += [f"- {m['id']} {_md_cell(m['description'])}" for m in gaps]
    for status, title in (("flaky", "Flaky"), ("not-run", "Not run (budget)")):
        rows = [m for m in report["mutants"] if m["status"] == status]
        if rows:
            lines += ["", f"## {title} ({len(rows)})", ""]
            lines += [
                f"- {m['id']} {_md_cell(m['description'])}"
                + (
                    f" (did not repeat: {', '.join(m['flaky_scenarios'])})"
                    if m["flaky_scenarios"]
                    else ""
                )
                for m in rows
            ]
    return "\n".join(lines) + "\n"


def write_reports(report: dict[str, Any], report_dir: Path) -> tuple[Path, Path]:
    """Write ``mutation.json`` and ``mutation.md``; returns their paths."""
    report_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path = report_dir / "mutation.json", report_dir / "mutation.md"
    json_path.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", "utf-8")
    md_path.write_text(render_markdown(report), "utf-8")
    return json_path, md_path


# ---------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------


def _clean_up_leftovers() -> bool:
    """Report, then kill and reap, any process of ours still around; True if there was one."""
    import psutil

    from harness.host import kill_tree, leftovers, reap_pids

    left = leftovers()
    if not left["live"] and not left["zombies"]:
        return False
    described = []
    for pid in left["live"]:
        try:
            described.append(f"{pid} {' '.join(psutil.Process(pid).cmdline())[:160]}")
        except psutil.Error:
            described.append(f"{pid} (gone)")
    print(
        f"mutate: processes left behind (now killed): live {described}, zombies {left['zombies']}",
        file=sys.stderr,
    )
    me = {c.pid for c in psutil.Process().children()}
    for pid in left["live"]:
        if pid in me:  # a child of ours: kill it with what it started
            reap_pids([pid, *kill_tree(pid)])
    reap_pids(left["zombies"])
    return True


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``tools/mutate.py``."""
    parser = argparse.ArgumentParser(
        prog="tools/mutate.py",
        description="Mutation testing of the scenario catalog (and of CPython's own suite).",
    )
    parser.add_argument("--module", choices=sorted(MODULES), default="socketserver")
    parser.add_argument("--source", type=Path, help="mutate this file (default: the stdlib's)")
    parser.add_argument("--max", type=int, default=None, help="at most N mutants (sampled)")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    parser.add_argument("--lines", type=parse_lines, help="only mutate lines A-B")
    parser.add_argument(
        "--function",
        action="append",
        default=[],
        metavar="NAME",
        help="only mutate in this function or class (Class.method, a glob; repeatable)",
    )
    parser.add_argument(
        "--exclude-function",
        action="append",
        default=[],
        metavar="NAME",
        help="never mutate in this function or class (e.g. CGIHTTPRequestHandler; repeatable)",
    )
    parser.add_argument(
        "--kind", action="append", default=[], help="only these mutation kinds (repeatable)"
    )
    parser.add_argument("--list", action="store_true", help="print the mutants and exit")
    parser.add_argument("--show", metavar="ID", help="print one mutant's diff and exit")
    parser.add_argument(
        "--select",
        action="append",
        default=[],
        metavar="GLOB",
        help="scenarios to run (default socketserver/* or http/*)",
    )
    parser.add_argument("--baseline", default="stdlib", metavar="SPEC")
    parser.add_argument(
        "--fuzz",
        type=float,
        default=None,
        metavar="SECONDS",
        help="fuzz-only: tell each mutant apart with `python -m harness fuzz` alone (no "
        "scenarios), this long per mutant; --jobs campaigns at once",
    )
    parser.add_argument(
        "--fuzz-family",
        default=None,
        metavar="FAMILY",
        help="with --fuzz: the family (default http, or stream for socketserver)",
    )
    parser.add_argument("--fuzz-seed", type=int, default=0, help="with --fuzz: the seed")
    parser.add_argument("--jobs", type=int, default=4, help="server processes at once")
    parser.add_argument("--budget-seconds", type=float, default=None)
    parser.add_argument("--with-cpython-suite", action="store_true")
    parser.add_argument("--suite-timeout", type=float, default=60.0)
    parser.add_argument("--report-dir", type=Path, default=PROJECT_ROOT / "reports" / "mutation")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status (0 done, 2 bad usage, 3 leftovers)."""
    args = build_parser().parse_args(argv)
    if args.jobs < 1:
        print("mutate: --jobs must be 1 or more", file=sys.stderr)
        return 2
    source_path = (args.source or module_source_path(args.module)).resolve()
    generator = MutantGenerator(source_path.read_text("utf-8"), str(source_path))
    restrictions = {
        "lines": args.lines,
        "functions": args.function,
        "exclude_functions": args.exclude_function,
        "kinds": args.kind,
    }
    candidates = generator.candidates(*restrictions.values())
    if args.show:
        site = next((s for s in generator.sites if f"M{s.number:04d}" == args.show), None)
        if site is None:
            print(f"mutate: no mutant {args.show}", file=sys.stderr)
            return 2
        mutant, why = generator.build(site)
        if mutant is None:
            print(f"{args.show}: rejected: {why}")
            return 0
        import difflib

        print(mutant.description)
        print(
            "".join(
                difflib.unified_diff(
                    generator.source.splitlines(True),
                    mutant.source.splitlines(True),
                    str(source_path),
                    mutant.id,
                )
            )
        )
        return 0
    mutants = generator.generate(args.max, args.seed, *restrictions.values())
    generation = {
        "seed": args.seed,
        "max": args.max,
        "candidates": len(candidates),
        "rejected": generator.rejected,
        "restrictions": restrictions,
    }
    print(
        f"{len(mutants)} mutants of {source_path} ({len(candidates)} candidates; "
        f"rejected: {generator.rejected or 'none'})",
        file=sys.stderr,
    )
    if args.list:
        for m in mutants:
            print(f"{m.id}  {m.scope:<40} {m.description}")
        return 0

    import trio

    from harness.targets import parse_target
    from scenarios import select

    fuzzing = args.fuzz is not None
    scenarios = [] if fuzzing else select(args.select or [DEFAULT_SELECT[args.module]])
    if fuzzing:
        family = args.fuzz_family or ("http" if args.module == "http.server" else "stream")
        generation["fuzz"] = {"seconds": args.fuzz, "family": family, "seed": args.fuzz_seed}
    elif not scenarios:
        print(f"mutate: no scenario matches {args.select}", file=sys.stderr)
        return 2
    settings = RunSettings(
        module=args.module,
        source_path=source_path,
        jobs=args.jobs,
        budget_seconds=args.budget_seconds,
        with_suite=args.with_cpython_suite,
        suite_timeout=args.suite_timeout,
        quiet=args.quiet,
        fuzz_seconds=args.fuzz,
        fuzz_family=generation.get("fuzz", {}).get("family", "http"),
        fuzz_seed=args.fuzz_seed,
    )
    run = MutationRun(mutants, scenarios, parse_target(args.baseline), settings)
    interrupted = False
    try:
        trio.run(run.run)
    except KeyboardInterrupt:
        interrupted = run.stopped_early = True
        print("interrupted: writing what was done", file=sys.stderr)
    finally:
        run.cleanup()
    report = build_report(run, generation, [sys.argv[0], *(argv or sys.argv[1:])])
    json_path, md_path = write_reports(report, args.report_dir)
    rates = report["kill_rate"]
    line = (
        f"{'fuzzing' if fuzzing else 'catalog'} kill rate "
        f"{_percent(rates['without_import_errors'])} "
        f"({_percent(rates['with_import_errors'])} with import errors)"
    )
    if "cpython_suite" in report:
        theirs = report["cpython_suite"]["kill_rate"]
        line += (
            f"; CPython suite {_percent(theirs['without_import_errors'])} "
            f"({_percent(theirs['with_import_errors'])})"
        )
    print(line, file=sys.stderr)
    print(f"report: {md_path} and {json_path}", file=sys.stderr)
    if _clean_up_leftovers():
        return 3
    return 130 if interrupted or run.interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
