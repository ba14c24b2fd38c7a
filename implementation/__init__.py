"""The reference implementation: drop-in replacements for CPython's ``socketserver`` and
``http.server``, written from their documented and observed behaviour.

``implementation.socketserver`` stands in for ``socketserver`` and
``implementation.http.server`` for ``http.server``. Both are stdlib-only and run on
Python 3.9+ and PyPy, because they are loaded inside the server process under test.
"""
