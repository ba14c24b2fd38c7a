"""Run one of CPython's own test suites against a chosen implementation.

``python -m harness.cpython_suite test_socketserver --socketserver implementation.socketserver``
installs the given module under the stdlib name before the suite imports it, enables the
resources the suites need (without ``network`` ``test_socketserver`` skips every test
silently; without ``walltime`` ``test_xmlrpc`` skips its multi-path tests), runs the suite
and prints ``ran=N failures=N errors=N skipped=N``. Exit status 0 when the suite passed and
ran at least one test.

The suites of the modules themselves are ``test_socketserver`` and ``test_httpservers``;
the suites of the stdlib's own users of them (``test_xmlrpc``, ``test_wsgiref``,
``test_logging``) run the same way, with both modules substituted.

Stdlib-only and Python 3.9-compatible: it runs under whichever interpreter is being tested.
"""

import argparse
import importlib
import sys
import unittest
from typing import List, Optional

from harness.substitution import install_module

#: Test resources the suites are run with: the ones their server tests need. (``walltime``
#: guards tests that wait on real time, such as test_xmlrpc's multi-path server.)
RESOURCES = ("network", "walltime")


def main(argv: Optional[List[str]] = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m harness.cpython_suite")
    parser.add_argument(
        "suite",
        help="a suite of the stdlib's test package: test_socketserver, test_httpservers, "
        "or a dependent's (test_xmlrpc, test_wsgiref, test_logging)",
    )
    parser.add_argument("--socketserver", help="module name or .py path to use as socketserver")
    parser.add_argument("--http-server", help="module name or .py path to use as http.server")
    parser.add_argument("-k", dest="patterns", action="append", help="only tests matching")
    args = parser.parse_args(argv)
    if "" not in sys.path and "." not in sys.path:
        sys.path.insert(0, ".")
    if args.socketserver:
        install_module("socketserver", args.socketserver)
    if args.http_server:
        install_module("http.server", args.http_server)
    from test import support

    support.use_resources = list(RESOURCES)
    suite_module = importlib.import_module("test." + args.suite)
    loader = unittest.TestLoader()
    if args.patterns:
        loader.testNamePatterns = ["*%s*" % p for p in args.patterns]
    tests = loader.loadTestsFromModule(suite_module)
    result = unittest.TextTestRunner(verbosity=1, stream=sys.stderr).run(tests)
    print(
        "ran=%d failures=%d errors=%d skipped=%d"
        % (result.testsRun, len(result.failures), len(result.errors), len(result.skipped))
    )
    return 0 if result.wasSuccessful() and result.testsRun > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
