"""Stream request handlers (TCP and Unix stream) for the socketserver catalog."""

import socketserver


class Echo(socketserver.StreamRequestHandler):
    """Echo every byte until the client half-closes, then finish."""

    def handle(self):
        while True:
            data = self.rfile.read1(65536) if hasattr(self.rfile, "read1") else self.rfile.read(1)
            if not data:
                return
            self.wfile.write(data)


class EchoLine(socketserver.StreamRequestHandler):
    """Read one line and send it back."""

    def handle(self):
        self.wfile.write(self.rfile.readline())


class Raise(socketserver.StreamRequestHandler):
    """Read one line, then raise ValueError: handle_error's output is observed."""

    def handle(self):
        self.rfile.readline()
        raise ValueError("boom from handler")


class Note(socketserver.StreamRequestHandler):
    """Report a note event through ``harness.agent.emit``, then echo one line."""

    def handle(self):
        from harness.agent import emit

        emit("note", note="handled in %s" % type(self).__mro__[1].__name__)
        self.wfile.write(self.rfile.readline())
