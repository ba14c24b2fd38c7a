"""A stream handler that runs its own server process out of file descriptors, for the
``socketserver/starvation`` scenarios.

A client that sends ``hog`` (or ``hog-and-stay``) makes the handling thread lower the
process's soft ``RLIMIT_NOFILE`` to just above the highest descriptor in use and open
``os.devnull`` until ``EMFILE``: from then on ``accept()`` fails with EMFILE and new
connections wait in the listen queue. It answers ``starved``, holds the descriptors until
the scenario calls ``release()`` in the server process (at most ``HOLD_LIMIT`` seconds),
frees them, restores the limit and answers ``released``. After ``hog`` the request then
ends (which frees the connection's own descriptor too); after ``hog-and-stay`` it stays
open until ``finish()`` is called, so the descriptors come back without any request of
the server ending. Any other line is echoed as ``echo <line>``.

Written against the stdlib names; stdlib-only, Python 3.9-compatible. Without
``resource`` or a way to list the process's descriptors (not Linux, not a BSD) it answers
``cannot starve: <why>`` and holds nothing.
"""

import os
import socketserver
import threading

RELEASE = threading.Event()
FINISH = threading.Event()
#: The longest the descriptors are held when the scenario never calls ``release()``.
HOLD_LIMIT = 10.0


def release():
    """Let the handler free its descriptors (called by the scenario through ``run.exec``)."""
    RELEASE.set()


def finish():
    """Let a ``hog-and-stay`` request end."""
    FINISH.set()


def _open_descriptors():
    """The numbers of the process's open descriptors."""
    for directory in ("/proc/self/fd", "/dev/fd"):
        if os.path.isdir(directory):
            return [int(name) for name in os.listdir(directory)]
    raise OSError("no /proc/self/fd or /dev/fd to list descriptors")


class Starvation:
    """Every descriptor the process may still open, taken by ``start()`` and given back
    by ``stop()``."""

    def __init__(self):
        self.held = []
        self.limits = None

    def start(self):
        """Take them all; return None, or why it could not be done."""
        try:
            import resource
        except ImportError:
            return "no resource module"
        try:
            self.limits = resource.getrlimit(resource.RLIMIT_NOFILE)
            highest = max(_open_descriptors())
            # A little room above the highest descriptor, then fill every free number.
            resource.setrlimit(resource.RLIMIT_NOFILE, (highest + 4, self.limits[1]))
        except (OSError, ValueError) as exc:
            self.stop()
            return str(exc)
        try:
            while True:
                self.held.append(os.open(os.devnull, os.O_RDONLY))
        except OSError:
            # EMFILE: every descriptor number below the limit is in use.
            pass
        return None

    def stop(self):
        """Close what ``start()`` opened and restore the limit."""
        for fd in self.held:
            os.close(fd)
        self.held = []
        if self.limits is not None:
            import resource

            resource.setrlimit(resource.RLIMIT_NOFILE, self.limits)
            self.limits = None


class Hog(socketserver.StreamRequestHandler):
    """``hog`` / ``hog-and-stay``: run the process out of descriptors (see the module);
    anything else: echo the line."""

    def handle(self):
        line = self.rfile.readline()
        command = line.strip()
        if command not in (b"hog", b"hog-and-stay"):
            self.wfile.write(b"echo " + line)
            return
        starvation = Starvation()
        why = starvation.start()
        if why is not None:
            self.wfile.write(b"cannot starve: " + why.encode("ascii", "replace") + b"\n")
            return
        try:
            self.wfile.write(b"starved\n")
            RELEASE.wait(HOLD_LIMIT)
        finally:
            starvation.stop()
        self.wfile.write(b"released\n")
        if command == b"hog-and-stay":
            FINISH.wait(HOLD_LIMIT)
