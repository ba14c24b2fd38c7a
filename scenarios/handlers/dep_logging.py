"""The logging cookbook's network receivers, on top of the target's ``socketserver``.

``logging`` is a user of ``socketserver`` twice over: the cookbook's receivers for
``SocketHandler`` and ``DatagramHandler`` records are ``StreamRequestHandler`` /
``DatagramRequestHandler`` subclasses served by a ``ThreadingTCPServer`` / ``UDPServer``,
and ``logging.config.listen`` runs a ``ThreadingTCPServer`` of its own in a thread. The
agent substitutes the target's ``socketserver`` before this module imports ``logging``,
so all of them run on the implementation under test.

Every record a receiver handles goes to the ``dep`` logger tree, whose ``Sink`` prints a
line of what does not vary (name, level, message, args, exception text) on stdout and
reports it as a ``record`` event, which the scenarios wait for. Stdlib-only, Python
3.9-compatible.
"""

import hashlib
import logging
import logging.config
import pickle
import socket
import socketserver
import struct
import sys

try:
    from harness.agent import emit
except ImportError:  # outside the harness: nothing to report to

    def emit(ev, **fields):
        """No harness, no events."""


#: Messages longer than this are shown by length and digest (events stay short).
LONG = 120


def summary(text):
    """``text``, or for a long one its length, SHA-256 prefix and head."""
    if len(text) <= LONG:
        return text
    digest = hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    return "<%d chars sha256:%s %s...>" % (len(text), digest, text[:24])


def describe(record):
    """The parts of a received record that do not vary from run to run, as one line."""
    parts = [
        record.name,
        record.levelname,
        "levelno=%s" % record.levelno,
        "msg=%s" % summary(record.getMessage()),
        "args=%r" % (record.args,),
        "func=%s" % record.funcName,
    ]
    if record.exc_text:
        lines = record.exc_text.splitlines()
        parts.append("exc_text=%s ... %s (%d lines)" % (lines[0], lines[-1], len(lines)))
    extra = getattr(record, "tag", None)
    if extra is not None:
        parts.append("tag=%s" % (extra,))
    return " | ".join(parts)


class Sink(logging.Handler):
    """Print each record it gets as ``describe`` renders it, and report it as an event."""

    def emit(self, record):
        """Print and report ``record`` (``Handler.emit``)."""
        line = describe(record)
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
        emit("record", note=line)


#: The logger tree the receivers hand records to (a record's own name is kept).
TREE = logging.getLogger("dep")
TREE.setLevel(logging.DEBUG)
TREE.propagate = False
TREE.addHandler(Sink())


def unpickle(data):
    """A LogRecord from the pickled dict ``SocketHandler.makePickle`` sent."""
    return logging.makeLogRecord(pickle.loads(data))


def handle_record(server, record):
    """Give ``record`` to the logger it names (or the server's ``logname``), as the
    cookbook's ``handleLogRecord`` does."""
    name = getattr(server, "logname", None) or record.name
    logging.getLogger(name).handle(record)


class LogRecordStreamHandler(socketserver.StreamRequestHandler):
    """The cookbook's receiver: length-prefixed pickled records read from the connection
    with ``recv`` until the client closes it."""

    def handle(self):
        """Read records until a short length prefix (the client closed)."""
        while True:
            chunk = self.connection.recv(4)
            if len(chunk) < 4:
                break
            length = struct.unpack(">L", chunk)[0]
            chunk = self.connection.recv(length)
            while len(chunk) < length:
                more = self.connection.recv(length - len(chunk))
                if not more:
                    raise EOFError("the connection closed inside a record")
                chunk = chunk + more
            handle_record(self.server, unpickle(chunk))


class LogRecordFileHandler(socketserver.StreamRequestHandler):
    """A receiver that reads through ``self.rfile`` (``read(4)``, ``read(length)``), as
    many users of ``StreamRequestHandler`` do; ``per_connection`` records at most, then it
    returns and the server closes the connection (``None``: until the client closes)."""

    per_connection = None

    def handle(self):
        """Read records from ``rfile`` until EOF or ``per_connection`` of them."""
        count = 0
        while self.per_connection is None or count < self.per_connection:
            header = self.rfile.read(4)
            if len(header) < 4:
                break
            length = struct.unpack(">L", header)[0]
            data = self.rfile.read(length)
            handle_record(self.server, unpickle(data))
            count += 1


class LogRecordReceiver(socketserver.ThreadingTCPServer):
    """The cookbook's ``LogRecordSocketReceiver`` without its own serve loop (the
    harness runs ``serve_forever``)."""

    allow_reuse_address = True
    logname = None


class UnreadableRecord(Exception):
    """A datagram that does not hold a whole pickled record."""


class LogRecordDatagramHandler(socketserver.DatagramRequestHandler):
    """The cookbook's UDP receiver: one pickled record per datagram, after the length
    prefix ``DatagramHandler`` keeps."""

    def handle(self):
        """Unpickle the datagram's record and hand it on; nothing is written back (the
        server's ``finish`` still sends the empty ``wfile``).

        A datagram that does not unpickle (one the server cut at ``max_packet_size``)
        raises ``UnreadableRecord`` with the length the handler got: what pickle raises
        for truncated data, and its message, are pickle's and vary by implementation
        (``UnpicklingError`` on CPython, ``EOFError`` on PyPy), while the length is what
        the server did.
        """
        packet = self.rfile.read()
        length = struct.unpack(">L", packet[:4])[0]
        try:
            record = unpickle(packet[4 : 4 + length])
        except Exception:
            message = "a datagram of %d bytes (record length %d) does not unpickle"
            raise UnreadableRecord(message % (len(packet), length)) from None
        handle_record(self.server, record)


# -- logging.config.listen ------------------------------------------------------------------

#: The listener thread of the current scenario (one per server process).
LISTENER = {}

#: What ``verify`` callables accept: a configuration after this first line.
SIGNATURE = b"signed by dependents\n"


def verify_signed(data):
    """Accept only configurations that start with ``SIGNATURE``, without it."""
    if data.startswith(SIGNATURE):
        return data[len(SIGNATURE) :]
    return None


VERIFIERS = {None: None, "signed": verify_signed}


def start_config_listener(verify=None, timeout=5.0):
    """Start ``logging.config.listen(0, verify)`` and return the port it listens on.

    ``listen`` binds port 0 in its thread and stores the real port on the thread before
    it sets ``thread.ready`` (3.9 to 3.13 alike); ``ready`` is cleared again here, so that
    the next time it is set means a configuration was handled.
    """
    thread = logging.config.listen(0, VERIFIERS[verify])
    thread.start()
    if not thread.ready.wait(timeout):
        raise RuntimeError("logging.config.listen never became ready")
    thread.ready.clear()
    LISTENER["thread"] = thread
    return thread.port


def wait_config(timeout=5.0):
    """Wait until the listener has handled a configuration; whether it did in time."""
    return LISTENER["thread"].ready.wait(timeout)


def stop_config_listener(timeout=5.0):
    """``stopListening()``, then join the listener's thread; whether it is still alive.

    The listener polls its abort flag only between selects of one second; a connection
    that sends nothing wakes it at once (its handler reads EOF and does nothing).
    """
    thread = LISTENER.pop("thread")
    logging.config.stopListening()
    try:
        with socket.create_connection(("127.0.0.1", thread.port), timeout=timeout):
            pass
    except OSError:
        pass  # already closed: the loop is ending anyway
    thread.join(timeout)
    return thread.is_alive()


def describe_logger(name):
    """What a configuration sets on a logger: level, propagation, handlers and formats."""
    logger = logging.getLogger(name)
    handlers = []
    for handler in logger.handlers:
        formatter = handler.formatter
        handlers.append(
            {
                "class": type(handler).__name__,
                "level": logging.getLevelName(handler.level),
                "format": getattr(formatter, "_fmt", None),
                "stream": getattr(getattr(handler, "stream", None), "name", None),
            }
        )
    return {
        "level": logging.getLevelName(logger.level),
        "effective": logging.getLevelName(logger.getEffectiveLevel()),
        "propagate": logger.propagate,
        "disabled": logger.disabled,
        "handlers": handlers,
    }


def try_logger(name):
    """Log one line at each level through ``name``: what the configuration lets out
    shows on stdout."""
    logger = logging.getLogger(name)
    for level in (logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR):
        logger.log(level, "probe at %s", logging.getLevelName(level))
    sys.stdout.flush()
