"""Install a target's modules under the stdlib names (``socketserver``, ``http.server``).

Stdlib-only and Python 3.9-compatible: used inside the server process (``harness.agent``)
and by ``harness.cpython_suite``, under whichever interpreter runs the target.
"""

import importlib
import importlib.util
import sys
from types import ModuleType

#: The stdlib module names a target may replace, in the order they must be installed
#: (``http.server`` imports ``socketserver``, so a substituted ``socketserver`` goes first).
SUBSTITUTABLE = ("socketserver", "http.server")


def install_module(stdname: str, spec: str) -> ModuleType:
    """Import ``spec`` (a module name or a ``.py`` path) and install it as ``stdname``.

    A file path is executed under the stdlib name itself, so its ``__name__`` is the stdlib
    name. A dotted ``stdname`` (``http.server``) is also set as an attribute of its parent
    package, so both ``import http.server`` and ``http.server`` attribute access find it.
    """
    if stdname not in SUBSTITUTABLE:
        raise ValueError(f"cannot substitute {stdname!r}: only {', '.join(SUBSTITUTABLE)}")
    if spec.endswith(".py"):
        file_spec = importlib.util.spec_from_file_location(stdname, spec)
        if file_spec is None or file_spec.loader is None:
            raise ImportError(f"cannot load {stdname} from {spec!r}")
        module = importlib.util.module_from_spec(file_spec)
        sys.modules[stdname] = module
        try:
            file_spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[stdname]
            raise
    else:
        module = importlib.import_module(spec)
    sys.modules[stdname] = module
    if "." in stdname:
        parent, child = stdname.rsplit(".", 1)
        setattr(importlib.import_module(parent), child, module)
    return module
