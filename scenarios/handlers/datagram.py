"""Datagram request handlers (UDP and Unix datagram) for the socketserver catalog."""

import socketserver


class Echo(socketserver.DatagramRequestHandler):
    """Send each datagram back."""

    def handle(self):
        self.wfile.write(self.rfile.read())
