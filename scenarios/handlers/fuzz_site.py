"""Handlers of the ``http-files``, ``http-cgi`` and ``http-errors`` fuzz families.

They serve ``www`` under the server process's working directory, which the harness fills
with the tree of ``harness.fuzz.tree`` before the process starts. Each handles its
requests in a thread for which file permission bits apply even when the server runs as
root (``drop_file_capabilities``), so the tree's unreadable file and directory are
unreadable. Written against the stdlib names (``import http.server``), so every target
runs them unchanged. Stdlib-only, Python 3.9-compatible.

- ``Files``: ``SimpleHTTPRequestHandler``.
- ``Cgi``: ``CGIHTTPRequestHandler``, on the fork path for ``/cgi-bin`` and on the
  subprocess path (``have_fork`` False, the Windows path) for ``/htbin``.
- ``Errors``: ``CGIHTTPRequestHandler`` on the fork path, whose ``send_error`` paths the
  ``http-errors`` grammar aims at (it serves files and scripts alike).
"""

import http.server
import threading
import warnings

from scenarios.handlers.http_files import drop_file_capabilities, www

_thread = threading.local()


def _unprivileged():
    """Drop root's file-permission override for this thread, once (the fuzz servers'
    threads serve many requests each)."""
    if not getattr(_thread, "unprivileged", False):
        drop_file_capabilities()
        _thread.unprivileged = True


class Files(http.server.SimpleHTTPRequestHandler):
    """SimpleHTTPRequestHandler serving ``./www``, permission bits applying."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("directory", www())
        super().__init__(*args, **kwargs)

    def setup(self):
        _unprivileged()
        super().setup()


# CGIHTTPRequestHandler warns once per process that it is deprecated (3.13+): the
# warning is not what is fuzzed, and its first appearance depends on the case order.
warnings.filterwarnings("ignore", category=DeprecationWarning, message=".*CGIHTTPRequestHandler")


class Cgi(http.server.CGIHTTPRequestHandler):
    """CGIHTTPRequestHandler serving ``./www``: ``/cgi-bin`` scripts on the fork path,
    ``/htbin`` ones on the subprocess path."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("directory", www())
        super().__init__(*args, **kwargs)

    def setup(self):
        _unprivileged()
        super().setup()

    def run_cgi(self):
        # An instance attribute: the choice is per request, the class keeps the stdlib's.
        self.have_fork = self.cgi_info[0] != "/htbin"
        super().run_cgi()


class Errors(Cgi):
    """The CGI handler on the fork path for both script directories, reading through a
    buffer.

    CGIHTTPRequestHandler reads its socket unbuffered (``rbufsize = 0``) so that a
    script gets the body: a request line of 64 KiB is then 65537 reads, which makes the
    limit requests of this family cost a tenth of a second each. The family's requests
    name no script that runs, so the buffer changes nothing they can show.
    """

    rbufsize = -1

    def run_cgi(self):
        http.server.CGIHTTPRequestHandler.run_cgi(self)
