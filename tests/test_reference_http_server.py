"""CPython's own ``test_httpservers`` against the reference ``implementation.http.server``.

Each run is a subprocess: ``python -m harness.cpython_suite test_httpservers --http-server
implementation.http.server``, which installs the reference as ``http.server`` first.

Expected failures come from data, not from this file: a test listed in an *active*
``implementation.deviations`` entry (``cpython_tests``) asserts the old stdlib behaviour
that the reference deliberately fixes, so it must fail, and every other test must pass.
An unexpected pass of such a test fails too (the deviation table would be stale).

CGI tests skip themselves as root, so ``test_cgi_suite_runs_unprivileged`` runs them as an
unprivileged user: in a user namespace (``unshare --user``; the process is uid 65534 in
the namespace, yet keeps read access to files it owns outside) or with ``setpriv``
(real uid 65534, on a copy of the interpreter and of the repository files it needs).
"""

import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile

import pytest

from implementation.deviations import DEVIATIONS, active_deviations

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOBODY = 65534
SUITE_TIMEOUT = 600
#: Tests each CPython branch's test_httpservers runs (observed with the stdlib, as root).
MIN_TESTS = {(3, 9): 73, (3, 10): 73, (3, 11): 76, (3, 12): 62, (3, 13): 76}
#: CGIHTTPServerTestCase size per branch; all of them must run and pass unprivileged.
MIN_CGI_TESTS = 14

_SUMMARY = re.compile(r"^ran=(\d+) failures=(\d+) errors=(\d+) skipped=(\d+)$", re.M)
# "FAIL: test_x (test.test_httpservers.Class.test_x)" (3.11+) or "(...Class)" (<= 3.10)
_FAILED = re.compile(r"^(?:FAIL|ERROR): (\w+) \(test\.test_httpservers\.(\w+)[\w.]*\)$", re.M)


class SuiteRun:
    """Outcome of one ``harness.cpython_suite`` subprocess."""

    def __init__(self, completed):
        self.returncode = completed.returncode
        self.output = completed.stdout + completed.stderr
        found = _SUMMARY.search(self.output)
        assert found, "no ran=... summary; output tail:\n" + self.output[-3000:]
        self.ran, self.failures, self.errors, self.skipped = map(int, found.groups())
        self.failed = {"%s.%s" % (cls, name) for name, cls in _FAILED.findall(self.output)}

    def describe(self):
        """Return a short report for assertion messages."""
        return "rc=%d ran=%d failures=%d errors=%d skipped=%d failed=%s\n%s" % (
            self.returncode,
            self.ran,
            self.failures,
            self.errors,
            self.skipped,
            sorted(self.failed),
            self.output[-4000:],
        )


def interpreter_version(python):
    """Return ``(major, minor, micro)`` of another interpreter."""
    code = "import sys; print(*sys.version_info[:3])"
    out = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True)
    return tuple(int(part) for part in out.stdout.split())


def expected_failures(version):
    """CPython tests that assert stdlib defects the reference fixes on ``version``."""
    return {test for entry in active_deviations(version) for test in entry["cpython_tests"]}


def run_suite(python, *, prefix=(), cwd=REPO, patterns=(), env=None):
    """Run the suite against the reference under ``python`` and parse the result."""
    argv = [*prefix, python, "-m", "harness.cpython_suite", "test_httpservers"]
    argv += ["--http-server", "implementation.http.server"]
    for pattern in patterns:
        argv += ["-k", pattern]
    full_env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", NO_COLOR="1")
    full_env.update(env or {})
    completed = subprocess.run(
        argv, cwd=cwd, env=full_env, capture_output=True, text=True, timeout=SUITE_TIMEOUT
    )
    return SuiteRun(completed)


def assert_suite_agrees_with_deviations(run, version):
    """Only the tests of active deviations may fail, and they must fail."""
    expected = expected_failures(version)
    assert run.errors == 0, run.describe()
    assert run.failed == expected, run.describe()
    assert run.returncode == (1 if expected else 0), run.describe()
    assert run.ran >= MIN_TESTS.get(tuple(version[:2]), 1), run.describe()


def find_pyenv_python(minor):
    """Return the newest ``~/.pyenv/versions/<minor>.*`` interpreter, or None."""
    pattern = os.path.expanduser("~/.pyenv/versions/%s.*/bin/python%s" % (minor, minor))
    candidates = [path for path in glob.glob(pattern) if os.access(path, os.X_OK)]

    def release(path):
        name = path.split("/versions/")[1].split("/")[0]
        return [int(number) for number in re.findall(r"\d+", name)]

    return max(candidates, key=release) if candidates else None


# -- (a) the running interpreter ----------------------------------------------------------


def test_suite_on_running_interpreter():
    """The whole suite, as the current user, under this interpreter (3.11 in CI)."""
    run = run_suite(sys.executable)
    assert_suite_agrees_with_deviations(run, sys.version_info)
    if sys.version_info[:2] == (3, 11):
        assert run.ran >= 76, run.describe()


# -- (b) CGI tests as an unprivileged user ------------------------------------------------


def _userns_prefix():
    """``unshare --user`` if this kernel lets us create a user namespace, else None."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return None
    probe = subprocess.run([unshare, "--user", "id", "-u"], capture_output=True, text=True)
    if probe.returncode != 0 or probe.stdout.strip() == "0":
        return None
    return [unshare, "--user"]


def _readable_by_nobody(path):
    """True if uid/gid 65534 can read ``path`` (every directory on the way included)."""
    setpriv = shutil.which("setpriv")
    argv = [setpriv, "--reuid=%d" % NOBODY, "--regid=%d" % NOBODY, "--clear-groups"]
    return subprocess.run([*argv, "test", "-r", path], capture_output=True).returncode == 0


def _share_tree(source, target):
    """Mirror ``source`` at ``target``: hard links where possible, copies otherwise."""

    def link_or_copy(src, dst):
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    ignore = shutil.ignore_patterns("site-packages")
    shutil.copytree(source, target, symlinks=True, ignore=ignore, copy_function=link_or_copy)


def _setpriv_setup(workdir):
    """Prepare a setpriv run; return ``(prefix, python, cwd, env)`` or a skip reason."""
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return "setpriv not installed"
    if os.geteuid() != 0:
        return "setpriv needs root to switch to uid %d" % NOBODY
    os.chmod(workdir, 0o755)
    # Repository files the run needs, in a directory the unprivileged user can read.
    repo_copy = os.path.join(workdir, "repo")
    for package in ("harness", "implementation"):
        shutil.copytree(
            os.path.join(REPO, package),
            os.path.join(repo_copy, package),
            ignore=shutil.ignore_patterns("__pycache__", "reports"),
        )
    python = os.path.realpath(sys.executable)
    env = {"HOME": workdir, "TMPDIR": workdir}
    if not _readable_by_nobody(python):
        # The interpreter lives where uid 65534 cannot go (e.g. /root/.pyenv): mirror
        # its installation next to the repository copy.
        install = os.path.dirname(os.path.dirname(python))
        mirror = os.path.join(workdir, "python")
        _share_tree(install, mirror)
        python = os.path.join(mirror, "bin", os.path.basename(python))
        env["LD_LIBRARY_PATH"] = os.path.join(mirror, "lib")
        env["PYTHONHOME"] = mirror
    for root, dirs, _files in os.walk(workdir):
        for name in dirs:
            os.chmod(os.path.join(root, name), 0o755)
    if not _readable_by_nobody(python):
        return "cannot make an interpreter readable by uid %d" % NOBODY
    prefix = [setpriv, "--reuid=%d" % NOBODY, "--regid=%d" % NOBODY, "--clear-groups"]
    return prefix, python, repo_copy, env


@pytest.fixture
def world_readable_dir():
    """A fresh directory under the system temp dir that uid 65534 can traverse.

    (pytest's ``tmp_path`` sits below a 0700 per-user directory.)
    """
    path = tempfile.mkdtemp(prefix="reference-http-server-")
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.mark.parametrize("mechanism", ["userns", "setpriv"])
def test_cgi_suite_runs_unprivileged(mechanism, world_readable_dir):
    """CGIHTTPServerTestCase runs (no skips) and passes when not root."""
    if mechanism == "userns":
        prefix = _userns_prefix()
        if prefix is None:
            pytest.skip("user namespaces unavailable (unshare --user failed)")
        python, cwd, env = sys.executable, REPO, {}
    else:
        setup = _setpriv_setup(world_readable_dir)
        if isinstance(setup, str):
            pytest.skip(setup)
        prefix, python, cwd, env = setup
    run = run_suite(python, prefix=prefix, cwd=cwd, patterns=["CGIHTTPServerTestCase"], env=env)
    assert run.skipped == 0, run.describe()
    assert run.ran >= MIN_CGI_TESTS, run.describe()
    assert run.failures == run.errors == 0 and run.returncode == 0, run.describe()


# -- (c) the other CPythons ---------------------------------------------------------------

OTHER_PYTHONS = ["3.9", "3.10", "3.12", "3.13"]


@pytest.mark.parametrize("minor", OTHER_PYTHONS)
def test_suite_on_other_cpython(minor):
    """The whole suite under each pyenv CPython found on this machine."""
    python = find_pyenv_python(minor)
    if python is None:
        pytest.skip("no CPython %s under ~/.pyenv/versions" % minor)
    run = run_suite(python)
    assert_suite_agrees_with_deviations(run, interpreter_version(python))


@pytest.mark.parametrize("minor", OTHER_PYTHONS)
def test_cgi_suite_on_other_cpython_unprivileged(minor):
    """CGI tests under each pyenv CPython, in a user namespace so they do not skip."""
    python = find_pyenv_python(minor)
    if python is None:
        pytest.skip("no CPython %s under ~/.pyenv/versions" % minor)
    prefix = _userns_prefix()
    if prefix is None:
        pytest.skip("user namespaces unavailable (unshare --user failed)")
    run = run_suite(python, prefix=prefix, patterns=["CGIHTTPServerTestCase"])
    assert run.skipped == 0, run.describe()
    assert run.ran >= MIN_CGI_TESTS, run.describe()
    assert run.failures == run.errors == 0 and run.returncode == 0, run.describe()


# -- the deviation table itself -----------------------------------------------------------


def test_active_deviations_follow_fixed_in():
    """Listed branches switch at their micro release; newer branches are fixed."""
    ids = lambda version: {entry["id"] for entry in active_deviations(version)}  # noqa: E731
    assert "gh-70765" in ids((3, 13, 9)) and "gh-70765" not in ids((3, 13, 10))
    assert "gh-70765" in ids((3, 12, 1)) and "gh-70765" not in ids((3, 15, 0))
    assert "gh-134098" in ids((3, 11, 7)) and "gh-134098" not in ids((3, 14, 0))
    # only entries no CPython release fixes (an empty fixed_in) are active everywhere
    assert ids((3, 15, 0)) == {e["id"] for e in DEVIATIONS if not e["fixed_in"]}
