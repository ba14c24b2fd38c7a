"""SimpleHTTPRequestHandler subclasses for the ``http/*`` file-serving catalog.

Each serves the directory ``www`` under the server process's working directory (its
private work directory, which the scenario fills from the harness side before sending
requests). Written against the stdlib names (``import http.server``), so every target runs
them unchanged. Stdlib-only, Python 3.9-compatible.
"""

import http.server
import os


def www():
    """The directory the handlers serve: ``www`` under the current working directory."""
    return os.path.join(os.getcwd(), "www")


class Files(http.server.SimpleHTTPRequestHandler):
    """SimpleHTTPRequestHandler serving ``./www``, passed as ``directory=``."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("directory", www())
        super().__init__(*args, **kwargs)


class HomePages(Files):
    """``index_pages`` set to ``home.html`` then ``index.html`` (the attribute is 3.12+)."""

    index_pages = ("home.html", "index.html")


class NoIndexPages(Files):
    """``index_pages`` empty: a directory is always listed (the attribute is 3.12+)."""

    index_pages = ()


# --- a handler thread without root's file-permission override ---------------------------
#
# The catalog runs as root here, and root reads a chmod-000 file and lists a chmod-000
# directory. Capabilities are per thread on Linux, so dropping CAP_DAC_OVERRIDE and
# CAP_DAC_READ_SEARCH from the effective set of the thread that handles requests makes
# permission bits apply again to it, and only to it (the agent's other threads keep
# theirs). Not root, or not Linux: nothing to drop, permission bits apply anyway.

_CAP_VERSION_3 = 0x20080522
_DAC_CAPS = (1 << 1) | (1 << 2)  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH


def drop_file_capabilities():
    """Clear CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH for the calling thread.

    Returns what happened: ``"not root"``, ``"dropped"``, or why it could not be done.
    """
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "not root"
    try:
        import ctypes

        class Header(ctypes.Structure):
            _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

        class Data(ctypes.Structure):
            _fields_ = [
                ("effective", ctypes.c_uint32),
                ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32),
            ]

        libc = ctypes.CDLL(None, use_errno=True)
        header = Header(_CAP_VERSION_3, 0)
        data = (Data * 2)()
        if libc.capget(ctypes.byref(header), data) != 0:
            return "capget failed: errno %d" % ctypes.get_errno()
        data[0].effective &= ~_DAC_CAPS
        if libc.capset(ctypes.byref(header), data) != 0:
            return "capset failed: errno %d" % ctypes.get_errno()
    except (OSError, AttributeError) as exc:
        return "no capset: %s" % (exc,)
    return "dropped"


class BadDates(Files):
    """Files whose ``date_time_string`` fails for a file's time (Last-Modified) but not
    for the Date header: ``send_head`` fails after it has opened the file, which it must
    close before the error goes on to ``handle_error``."""

    def date_time_string(self, timestamp=None):
        if timestamp is not None:
            raise ValueError("no date for file times")
        return super().date_time_string(timestamp)


class Unprivileged(Files):
    """Files, handled by a thread for which file permission bits apply, even as root."""

    def setup(self):
        drop_file_capabilities()
        super().setup()
