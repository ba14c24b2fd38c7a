"""Request handlers used by the catalog. They run inside the server process, written
against the stdlib names (``import socketserver``) so that every target runs them unchanged.
Stdlib-only, Python 3.9-compatible."""
