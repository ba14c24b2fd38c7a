"""The API surface of ``socketserver`` and ``http.server``: classes and module names.

Runs inside the server process, on top of the target's substituted modules (it imports
``socketserver`` / ``http.server`` by their stdlib names), and directly under any
interpreter for ``tools/api_versions.py``. Stdlib-only, Python 3.9-compatible.

Every fact is one name, so that a difference names the class and the attribute that a
target adds, lacks or changes, and so that a difference between CPython versions can be
explained name by name. Values are strings (multi-line for long containers) or lists of
strings, which the engine's diff shows one line each.

What is left out of the comparison, and why:

- name-mangled names (``_BaseServer__x`` of a class in the MRO): the project allows an
  implementation helpers of its own under mangled names, since they cannot shadow a name
  a user writes in a subclass;
- the text of ``__doc__`` (an implementation writes its own docstrings) and the
  compiler-generated ``__firstlineno__`` / ``__static_attributes__`` (3.13), which
  follow the source file: only their presence is recorded;
- inherited names are recorded with the class they come from; their value is described
  where they are defined (a public class has a scenario of its own), except for names
  inherited from a private class, which are described in full;
- private (single underscore) names by kind only: their presence matters (they can
  shadow), their internals are the implementation's own;
- names inherited from ``object``: they are the interpreter's (PyPy's ``object`` has no
  ``__sizeof__``, CPython 3.11's gained ``__getstate__``), not the module's.
"""

import enum
import importlib
import inspect
import os
import re
import sys
import types

#: Recorded by presence only: their value follows the source text.
_PRESENCE_ONLY = {
    "__doc__": "docstring (text not compared)",
    "__firstlineno__": "line number (not compared)",
    "__static_attributes__": "compiler-generated (not compared)",
}
_SIMPLE = (type(None), bool, int, float, complex, str, bytes)
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")
#: Reprs longer than this become one line per item, so that a diff shows the item.
_LINE = 80


def _python_version():
    return sys.version.split()[0]


def qualified(obj):
    """``module.qualname`` of a class or function (``socketserver.BaseServer``)."""
    module = getattr(obj, "__module__", None) or "?"
    return "%s.%s" % (module, getattr(obj, "__qualname__", getattr(obj, "__name__", "?")))


def is_private(name):
    """A single-underscore name (not a dunder)."""
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def is_mangled(name, cls):
    """Whether ``name`` is a name mangled in the body of a class of ``cls``'s MRO."""
    if name.endswith("__"):
        return False
    for klass in cls.__mro__:
        prefix = "_%s__" % (klass.__name__.lstrip("_"),)
        if name.startswith(prefix) and len(name) > len(prefix):
            return True
    return False


def _normalize(text, module):
    """Object addresses, the module's directory and the interpreter's version vary."""
    text = _ADDRESS.sub(" at 0x?", text)
    path = getattr(module, "__file__", None)
    if path:
        text = text.replace(os.path.dirname(os.path.abspath(path)), "<module dir>")
    return text.replace(_python_version(), "<python version>")


def _module_name(module):
    """A module's name; a target's module installed under a stdlib name goes by that name
    (a target given as a module path keeps its own ``__name__``, ``implementation.x``)."""
    for stdname in ("socketserver", "http.server"):
        if sys.modules.get(stdname) is module:
            return stdname
    return module.__name__


def _is_simple(value, depth=0):
    if isinstance(value, (*_SIMPLE, enum.Enum)):
        return True
    if depth > 3:
        return False
    if isinstance(value, dict):
        return all(_is_simple(k, depth + 1) and _is_simple(v, depth + 1) for k, v in value.items())
    if isinstance(value, (list, tuple, set, frozenset)):
        return all(_is_simple(v, depth + 1) for v in value)
    return False


def _simple_repr(value):
    """A repr, one line per item (dicts and sets sorted) when it is long."""
    text = repr(value)
    if len(text) <= _LINE:
        return text
    kind = type(value).__name__
    if isinstance(value, str) and "\n" in value:
        lines = [repr(line) for line in value.splitlines(True)]
    elif isinstance(value, dict):
        lines = sorted("%r: %r" % item for item in value.items())
    elif isinstance(value, (set, frozenset)):
        lines = sorted(repr(v) for v in value)
    elif isinstance(value, (list, tuple)):
        lines = [repr(v) for v in value]
    else:
        return text
    return "\n".join(["%s of %d:" % (kind, len(value))] + ["  " + line for line in lines])


def signature(func):
    """``str(inspect.signature(func))``, or why there is none."""
    try:
        return str(inspect.signature(func))
    except (TypeError, ValueError):
        return "(no signature)"


def kind(value):
    """The kind of a value, without its details (for private names)."""
    if isinstance(value, type):
        return "class"
    if isinstance(value, types.ModuleType):
        return "module"
    if isinstance(value, types.FunctionType):
        return "function"
    return type(value).__name__


def describe(value, module):
    """A public value as a string: a signature, a repr, or a kind with a qualified name."""
    if isinstance(value, type):
        return "class " + qualified(value)
    if isinstance(value, types.ModuleType):
        return "module " + _module_name(value)
    if isinstance(value, (staticmethod, classmethod)):
        return "%s %s" % (type(value).__name__, signature(value.__func__))
    if isinstance(value, property):
        parts = [n for n in ("fget", "fset", "fdel") if getattr(value, n) is not None]
        return "property (%s)" % (", ".join(parts),)
    if isinstance(value, types.FunctionType):
        return "function " + signature(value)
    if isinstance(value, types.BuiltinFunctionType) or type(value).__name__.startswith(
        "builtin_function"
    ):
        # What a builtin's type is called, and whether it has a signature, is the
        # interpreter's (CPython: builtin_function_or_method; PyPy: builtin_function).
        return "builtin function " + qualified(value)
    if isinstance(value, (types.GetSetDescriptorType, types.MemberDescriptorType)):
        # __dict__/__weakref__ slots: their qualname is the interpreter's way of naming them
        return type(value).__name__
    if _is_simple(value):
        return _normalize(_simple_repr(value), module)
    if callable(value) or hasattr(type(value), "__get__"):
        name = ""
        if hasattr(value, "__qualname__"):
            name = " " + qualified(value)
        text = "%s%s %s" % (type(value).__name__, name, signature(value))
        return _normalize(text, module)
    return "instance of " + qualified(type(value))


def _defined(name, value, module):
    if name in _PRESENCE_ONLY:
        return _PRESENCE_ONLY[name]
    if is_private(name):
        return kind(value)
    return describe(value, module)


def probe_class(module_name, class_name):
    """The facts of one class: its MRO, and one fact per name it defines or inherits.

    Keys are ``Class`` (the class itself), ``Class.__mro__`` and ``Class.name``; a name
    defined by the class reads ``defined here: <description>``, an inherited one
    ``inherited from <owner>``. A module without the class gives no facts.
    """
    module = importlib.import_module(module_name)
    if not hasattr(module, class_name):
        # No facts at all: every name of the class then shows as absent on this side.
        return {}
    cls = getattr(module, class_name)
    if not isinstance(cls, type):
        return {class_name: "not a class: " + kind(cls)}
    facts = {
        class_name: "class " + qualified(cls),
        class_name + ".__mro__": [qualified(k) for k in cls.__mro__],
    }
    own = vars(cls)
    for name in sorted(set(dir(cls)) | set(own)):
        if is_mangled(name, cls):
            continue
        key = "%s.%s" % (class_name, name)
        if name in own:
            facts[key] = "defined here: " + _defined(name, own[name], module)
            continue
        owner = next((k for k in cls.__mro__ if name in vars(k)), None)
        if owner is object:
            # The interpreter's, not the module's (PyPy's object lacks __sizeof__; 3.11
            # gave it __getstate__): a name the module itself adds is "defined here".
            continue
        if owner is None:
            facts[key] = "inherited: " + describe(getattr(cls, name), module)
        elif is_private(owner.__name__):
            where = qualified(owner)
            facts[key] = "inherited from %s: %s" % (
                where,
                _defined(name, vars(owner)[name], module),
            )
        else:
            facts[key] = "inherited from " + qualified(owner)
    return facts


def probe_module(module_name):
    """The facts of a module: each public name with its description, and ``__all__``.

    Keys are ``module.name`` and ``module.__all__: name`` (``listed``, or how many
    times); private module names are the implementation's own and are left out.
    """
    module = importlib.import_module(module_name)
    facts = {}
    for name in sorted(vars(module)):
        if not name.startswith("_"):
            facts["%s.%s" % (module_name, name)] = describe(vars(module)[name], module)
    listed = getattr(module, "__all__", None)
    if listed is None:
        facts[module_name + ".__all__"] = "absent"
    else:
        for name in sorted(set(listed)):
            count = list(listed).count(name)
            facts["%s.__all__: %s" % (module_name, name)] = (
                "listed" if count == 1 else "listed %d times" % (count,)
            )
    return facts


def public_classes(module_name):
    """The public classes the module defines (its own, not imported ones), sorted."""
    module = importlib.import_module(module_name)
    return sorted(
        name
        for name, value in vars(module).items()
        if not name.startswith("_") and isinstance(value, type) and value.__module__ == module_name
    )


def mangled_names(module_name):
    """``{class: [mangled names in its namespace]}``, for the record of what is left out."""
    module = importlib.import_module(module_name)
    found = {}
    for name in public_classes(module_name):
        cls = getattr(module, name)
        names = sorted(n for n in dir(cls) if is_mangled(n, cls))
        if names:
            found[name] = names
    return found


def probe_all(module_names=("socketserver", "http.server")):
    """Everything, for ``tools/api_versions.py``: per module, its facts and each class's."""
    result = {}
    for module_name in module_names:
        classes = public_classes(module_name)
        result[module_name] = {
            "module": probe_module(module_name),
            "classes": {name: probe_class(module_name, name) for name in classes},
            "mangled": mangled_names(module_name),
        }
    return result


if __name__ == "__main__":
    import json

    report = {"python": list(sys.version_info[:3]), "modules": probe_all()}
    print(json.dumps(report, indent=1, sort_keys=True))
