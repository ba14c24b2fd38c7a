"""Target spec strings: parsing, validation, and the built-in targets."""

import sys

import pytest

from harness.errors import UsageError
from harness.targets import BUILTIN, parse_target


def test_parse_target_builtin_names():
    assert parse_target("stdlib") is BUILTIN["stdlib"]
    assert parse_target("reference").module_map == {
        "socketserver": "implementation.socketserver",
        "http.server": "implementation.http.server",
    }


def test_parse_target_full_spec(tmp_path):
    module = tmp_path / "mine.py"
    module.write_text("")
    target = parse_target(
        f"name=mine,socketserver={module},http.server=pkg.server,python={sys.executable}"
    )
    assert target.name == "mine"
    assert target.module_map == {"socketserver": str(module), "http.server": "pkg.server"}
    assert target.python == sys.executable


def test_parse_target_builtin_under_other_python():
    target = parse_target(f"name=reference,python={sys.executable}")
    assert target.module_map == BUILTIN["reference"].module_map


def test_parse_target_naming_no_module_is_the_reference_unless_modules_says():
    assert parse_target("name=py,python=python3").module_map == BUILTIN["reference"].module_map
    assert parse_target("name=py,python=python3").labels == {"py", "reference"}
    assert parse_target("name=again,modules=stdlib").module_map == {}
    assert parse_target("name=again,modules=stdlib").spec_string() == "name=again,modules=stdlib"
    with pytest.raises(UsageError, match="use stdlib or reference"):
        parse_target("name=x,modules=other")
    with pytest.raises(UsageError, match="use one"):
        parse_target("name=x,modules=stdlib,socketserver=socketserver")


def test_default_baseline_follows_the_targets_interpreter():
    from harness.cli import default_baseline

    other = parse_target("name=py,python=python3")
    assert default_baseline([other]).python == other.python
    assert default_baseline([other]).module_map == {}


def test_parse_target_spec_string_round_trips(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("")
    target = parse_target(f"name=m,socketserver={module}")
    assert parse_target(target.spec_string()) == target


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "empty"),
        ("bogus", "unknown target 'bogus'"),
        ("socketserver=x", "no name="),
        ("name=a,colour=red", "keys are"),
        ("name=a,name=b", "given twice"),
        ("name=a,socketserver=", "empty value"),
        ("name=a,socketserver=/no/such/file.py", "no such file"),
        ("name=a,socketserver=not a module", "not a module name"),
        ("name=a,python=no-such-python-here", "no such interpreter"),
    ],
)
def test_parse_target_rejects_bad_specs_naming_the_part(spec, message):
    with pytest.raises(UsageError, match=message):
        parse_target(spec)
