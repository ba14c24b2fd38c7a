"""socketserver-harness: run the same scenario against several implementations of
``socketserver`` / ``http.server`` and report where they differ.

This package's ``__init__`` stays stdlib-only and Python 3.9-compatible, because
``harness.agent`` (which imports it) runs inside the server process under test, possibly
under another interpreter. The harness proper (engine, clients, reports) needs 3.11+.
"""

__version__ = "0.1.0"
