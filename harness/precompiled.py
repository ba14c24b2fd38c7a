"""The scenario handlers' modules compiled once, in a fork server, for all its agents.

An agent imports the handler module of its scenario after the target's modules are in place
(the import may depend on them), so a fork server cannot import it ahead. But it can compile
it: ``precompile`` compiles every module of a package (not running any) and puts a finder
first on ``sys.meta_path`` whose loader hands an agent the compiled code when the file is
still the one compiled (same size and modification time), and otherwise compiles as usual.
The module is then run in the agent, as it would be without this.

Without it, an agent whose interpreter writes no bytecode (``PYTHONDONTWRITEBYTECODE``, or a
read-only checkout) compiles its handler module every time: 1 to 8 ms of each agent's CPU.

Stdlib-only and Python 3.9-compatible: this runs under the target's interpreter.
"""

import importlib.machinery
import os
import sys
from types import CodeType
from typing import Any, Dict, Optional, Sequence, Tuple

#: path -> ((st_mtime_ns, st_size), code) of each module compiled.
_compiled: Dict[str, Tuple[Tuple[int, int], CodeType]] = {}
_packages: Tuple[str, ...] = ()


def _stamp(path: str) -> Optional[Tuple[int, int]]:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size)


class PrecompiledLoader(importlib.machinery.SourceFileLoader):
    """A source file loader that gives the code compiled ahead when the file is unchanged."""

    def get_code(self, fullname: str) -> Any:
        """The module's code: compiled ahead, or compiled now when the file changed."""
        path = self.get_filename(fullname)
        entry = _compiled.get(path)
        if entry is not None and _stamp(path) == entry[0]:
            return entry[1]
        return super().get_code(fullname)


class PrecompiledFinder:
    """Finds the modules of the packages compiled ahead, with a ``PrecompiledLoader``."""

    @classmethod
    def find_spec(cls, name: str, path: Optional[Sequence[str]] = None, target: Any = None) -> Any:
        """The path finder's spec, its loader swapped when the module was compiled ahead."""
        if not name.startswith(_packages):
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path, target)
        loader = getattr(spec, "loader", None)
        if type(loader) is importlib.machinery.SourceFileLoader and spec.origin in _compiled:
            spec.loader = PrecompiledLoader(loader.name, loader.path)
        return spec


def precompile(package: str) -> int:
    """Compile every module directly in the imported ``package`` (none is run); later
    imports of them take the compiled code. How many were compiled."""
    global _packages
    count = 0
    for directory in getattr(sys.modules[package], "__path__", ()):
        for entry in sorted(os.listdir(directory)):
            if not entry.endswith(".py") or entry == "__init__.py":
                continue
            path = os.path.join(directory, entry)
            stamp = _stamp(path)
            try:
                with open(path, "rb") as handle:
                    source = handle.read()
                loader = importlib.machinery.SourceFileLoader(package, path)
                code = loader.source_to_code(source, path)
            except (OSError, SyntaxError, ValueError):
                continue  # the agent's own import meets the same error
            if stamp is not None:
                _compiled[path] = (stamp, code)
                count += 1
    _packages = (*_packages, package + ".")
    if PrecompiledFinder not in sys.meta_path:
        sys.meta_path.insert(0, PrecompiledFinder)  # type: ignore[arg-type]
    return count
