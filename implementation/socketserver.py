"""Generic socket servers: a drop-in replacement for CPython's ``socketserver`` (3.9+).

The public surface (classes, hooks, attributes, error behaviour, ``__all__``) is the one
of the running interpreter's stdlib: ``allow_reuse_port`` exists from 3.11,
``ForkingUnixStreamServer`` and ``ForkingUnixDatagramServer`` from 3.12. The public
classes have no attribute names the stdlib's lack, on the class or on instances, because
users mix them with classes of their own (``xmlrpc.server.SimpleXMLRPCServer`` brings its
own ``_dispatch``): internals are module-level functions, objects in the name-mangled
``_BaseServer__loops``, ``_TCPServer__accept_shape`` and ``_ForkingMixIn__pidfds``.
Subclasses that override the documented hooks see the same call chain::

    serve_forever() / handle_request()
        -> _handle_request_noblock()
            -> get_request()            accept() or recvfrom()
            -> verify_request()         False: shutdown_request()
            -> process_request()        here, in a thread, or in a forked child
                -> finish_request()     builds RequestHandlerClass(request, addr, server)
                -> shutdown_request()   -> close_request()
            Exception  -> handle_error() then shutdown_request()
            BaseException -> shutdown_request(), then re-raised

Class layout (same inheritance as the stdlib, because user code relies on
``isinstance(server, TCPServer)`` for UDP servers and on the mixin-first MRO)::

    BaseServer -> TCPServer -> UDPServer
                            -> UnixStreamServer        UDPServer -> UnixDatagramServer
    ThreadingMixIn / ForkingMixIn + one of the above = Threading*/Forking* servers

Where no client can tell the difference, the internals are better than the stdlib's; every
deliberate difference with a CPython issue is listed in :data:`_DEVIATIONS`, the others
in ``implementation.deviations``:

* ``shutdown()`` wakes the serve loop through a socket pair instead of waiting for the
  next ``poll_interval`` tick.
* forked children are watched with pidfds (Linux) and reaped as soon as they exit, also in
  ``handle_request()`` loops, and ``max_children`` is enforced before each fork; only the
  server's own children are ever waited for.
* ``ThreadingMixIn._threads`` only ever holds live threads.
* ``SO_REUSEPORT`` is only set for ``AF_INET``/``AF_INET6`` (gh-128916, as in 3.13.2+).
* less work per request: the wait loops call ``poll()`` directly (unless
  ``_ServerSelector`` has been replaced), and ``get_request()`` builds a plain socket's
  connection without converting the listener's family and type to enums every time
  (``benchmarks/bench_socketserver.py`` measures the result).
* when ``accept()`` fails because the process (or the system) is out of descriptors,
  ``serve_forever()`` stops watching the listening socket for a short, growing while
  (or until one of the server's requests ends and frees a descriptor) instead of spinning
  on a socket that stays readable; the waiting connections stay queued and are served
  once descriptors are free (``implementation.deviations``: ``accept-emfile-spin``).

Stdlib-only; runs on CPython 3.9+ and PyPy.
"""

# Besides the stdlib's own (os, selectors, socket, sys, threading, time), imports
# are bound to private names: the module's public names are the stdlib's.
import errno as _errno
import os
import select as _select
import selectors
import socket
import sys
import threading
import traceback as _traceback
from io import BufferedIOBase
from io import BytesIO as _BytesIO
from math import ceil as _ceil
from time import monotonic as time
from time import sleep as _sleep

# Part of the 3.11 public surface (removed only in 3.15), so it stays.
__version__ = "0.4"

# Kept in the stdlib's order: the order of __all__ is visible to clients.
__all__ = [  # noqa: RUF022
    "BaseServer",
    "TCPServer",
    "UDPServer",
    "ThreadingUDPServer",
    "ThreadingTCPServer",
    "BaseRequestHandler",
    "StreamRequestHandler",
    "DatagramRequestHandler",
    "ThreadingMixIn",
]
_HAVE_FORK = hasattr(os, "fork")
_HAVE_UNIX = hasattr(socket, "AF_UNIX")
# The public surface follows the running interpreter's stdlib: allow_reuse_port arrived
# in 3.11 (bpo-16594), ForkingUnixStreamServer/ForkingUnixDatagramServer in 3.12
# (gh-103673).
_REUSE_PORT_API = sys.version_info >= (3, 11)
_FORKING_UNIX_API = _HAVE_FORK and _HAVE_UNIX and sys.version_info >= (3, 12)
if _HAVE_FORK:
    __all__ += ["ForkingUDPServer", "ForkingTCPServer", "ForkingMixIn"]  # noqa: RUF022
if _HAVE_UNIX:
    __all__ += [  # noqa: RUF022
        "UnixStreamServer",
        "UnixDatagramServer",
        "ThreadingUnixStreamServer",
        "ThreadingUnixDatagramServer",
    ]
if _FORKING_UNIX_API:
    __all__ += ["ForkingUnixStreamServer", "ForkingUnixDatagramServer"]  # noqa: RUF022

# The reference's deliberate differences, as data. Private: the stdlib module has no such
# name, and a drop-in must not add public ones.
_DEVIATIONS = [
    {
        "id": "gh-128916",
        "summary": "SO_REUSEPORT is set only for AF_INET/AF_INET6 sockets (as in 3.13.2+), "
        "so UnixStreamServer/UnixDatagramServer with allow_reuse_port=True bind instead of "
        "failing with EOPNOTSUPP on Linux >= 6.12.9.",
        "observable": True,
    },
    {
        "id": "gh-88932",
        "summary": "shutdown() wakes serve_forever() through a socket pair registered in its "
        "selector, so it returns in about a millisecond instead of up to poll_interval. "
        "service_actions() still runs at least every poll_interval; shutdown() before "
        "serve_forever() still blocks until a loop runs; the loop stays restartable. "
        "Visible only as timing and two extra file descriptors while the loop runs.",
        "observable": False,
    },
    {
        "id": "gh-90093",
        "summary": "ForkingMixIn reaps each child as soon as it exits: a pidfd per child "
        "(Linux) is watched by serve_forever() and handle_request(), and process_request() "
        "reaps finished children before forking. active_children therefore shrinks sooner "
        "and handle_request() loops leave no zombies.",
        "observable": True,
    },
    {
        "id": "gh-111872",
        "summary": "max_children is enforced before every fork, so it also holds in "
        "handle_request() loops (process_request() waits for one of the server's children "
        "to exit); waiting at the limit waits for the server's own children only, never "
        "os.waitpid(-1), so children spawned by other code are not reaped.",
        "observable": True,
    },
    {
        "id": "bpo-37193",
        "summary": "ThreadingMixIn with block_on_close: each worker thread removes itself "
        "from _threads when its request is done (and a thread that failed to start is "
        "removed at once), so _threads only holds live threads; server_close() still "
        "joins every live one.",
        "observable": True,
    },
]

# Same choice as the stdlib: poll() and select() need no extra descriptor of their own and
# a single system call per wait. Code in the wild patches this name, so it is looked up
# at every use.
if hasattr(selectors, "PollSelector"):
    _ServerSelector = selectors.PollSelector
else:
    _ServerSelector = selectors.SelectSelector
_DEFAULT_SELECTOR = _ServerSelector


def _fd_of(fileobj):
    """The descriptor behind ``fileobj``, with the errors a selector gives for a bad one."""
    if isinstance(fileobj, int):
        fd = fileobj
    else:
        try:
            fd = int(fileobj.fileno())
        except (AttributeError, TypeError, ValueError):
            raise ValueError("Invalid file object: %r" % (fileobj,)) from None
    if fd < 0:
        raise ValueError("Invalid file descriptor: %d" % fd)
    return fd


class _Waiter:
    """What the wait loops use: ``register(fileobj, data)``, ``unregister(fileobj)``,
    ``select(timeout)`` (the data of what is readable), ``close()``; a context manager."""

    __slots__ = ()

    def close(self):
        """Release what the waiter holds."""

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


class _PollWaiter(_Waiter):
    """Waits until registered descriptors are readable; ``select()`` returns their data.

    The wait loops' hot path: one ``poll()`` and a dict lookup per wake-up, without the
    general-purpose bookkeeping of a ``selectors`` selector (keys, event masks).
    """

    __slots__ = ("_data", "_poll")

    def __init__(self):
        self._poll = _select.poll()
        self._data = {}

    def register(self, fileobj, data=None):
        """Watch ``fileobj`` for reading; ``select()`` reports it as ``data``."""
        fd = _fd_of(fileobj)
        if fd in self._data:
            raise KeyError("%r (FD %d) is already registered" % (fileobj, fd))
        self._poll.register(fd, _select.POLLIN)
        self._data[fd] = data

    def unregister(self, fileobj):
        """Stop watching ``fileobj``."""
        fd = _fd_of(fileobj)
        del self._data[fd]
        self._poll.unregister(fd)

    def select(self, timeout=None):
        """Wait up to ``timeout`` seconds (None: forever); the data of what is ready."""
        if timeout is not None:
            # poll() counts milliseconds; rounding up never wakes before the timeout.
            timeout = 0 if timeout <= 0 else _ceil(timeout * 1000)
        try:
            ready = self._poll.poll(timeout)
        except InterruptedError:
            return []
        # A plain loop: a list comprehension costs a function call before Python 3.12.
        data = self._data
        found = []
        for fd, _events in ready:
            if fd in data:
                found.append(data[fd])
        return found

    def close(self):
        """Forget every descriptor (``poll`` objects own no descriptor of their own)."""
        self._data.clear()


class _SelectorWaiter(_Waiter):
    """``_PollWaiter``'s interface over a ``_ServerSelector`` instance: used where there
    is no ``poll()``, or when code has replaced ``_ServerSelector``."""

    __slots__ = ("_selector",)

    def __init__(self, selector):
        self._selector = selector

    def register(self, fileobj, data=None):
        """Watch ``fileobj`` for reading; ``select()`` reports it as ``data``."""
        self._selector.register(fileobj, selectors.EVENT_READ, data)

    def unregister(self, fileobj):
        """Stop watching ``fileobj``."""
        self._selector.unregister(fileobj)

    def select(self, timeout=None):
        """Wait up to ``timeout`` seconds (None: forever); the data of what is ready."""
        return [key.data for key, _events in self._selector.select(timeout)]

    def close(self):
        """Close the selector."""
        self._selector.close()


#: What a waiter's ``select()`` returns when only the server socket is ready.
_SERVER_ONLY = [None]


def _new_waiter():
    """A waiter for one wait loop: poll() directly unless ``_ServerSelector`` says
    otherwise (it is looked up here, at every use, so that patching it works)."""
    if _ServerSelector is _DEFAULT_SELECTOR and hasattr(_select, "poll"):
        return _PollWaiter()
    return _SelectorWaiter(_ServerSelector())


# Guards the wake-up sockets of running serve loops: shutdown() may write to one while the
# loop that owns it is closing it, and writing to a closed (possibly reused) descriptor
# number must never happen. Also makes the creation of a server's _WaitLoops atomic.
_WAKE_LOCK = threading.Lock()


class _WaitLoops:
    """A server's running wait loops, and what each of them watches besides the server.

    One per server, in its only private attribute, ``_BaseServer__loops`` (made on first
    use by :func:`_loops_of`). The public classes carry no attribute names of their own
    beyond the stdlib's: users mix them with classes of their own, and a helper called,
    say, ``_dispatch`` on ``BaseServer`` would shadow theirs (``xmlrpc.server`` has one).

    ``waiters`` and ``writers`` are immutable tuples, replaced and never mutated, so that
    readers in other threads (``shutdown()``) always see a consistent value.
    """

    __slots__ = ("exhausted", "freed", "pausing", "sources", "waiters", "writers")

    def __init__(self):
        # The waiters of the loops currently in serve_forever()/handle_request().
        self.waiters = ()
        # Write ends of the wake-up socket pairs of running serve_forever() loops.
        self.writers = ()
        # fd -> callback(server): descriptors every wait loop watches besides the server
        # socket (a forking server's pidfds), including loops that start later.
        self.sources = {}
        # Set when accept() failed for lack of descriptors; the serve loop that made the
        # call reacts to it (see _pace_accepts).
        self.exhausted = False
        # How many serve loops do not watch the server socket right now, and whether a
        # request ended (freeing a descriptor) since one of them stopped.
        self.pausing = 0
        self.freed = False

    def attach(self, waiter):
        """Make a starting loop's ``waiter`` watch the sources, and receive new ones."""
        for fd, callback in list(self.sources.items()):
            waiter.register(fd, callback)
        self.waiters = (*self.waiters, waiter)

    def detach(self, waiter):
        """Forget the waiter of a loop that is finishing (its owner closes it)."""
        self.waiters = tuple(w for w in self.waiters if w is not waiter)

    def add_source(self, fd, callback):
        """Watch ``fd`` in every running and future loop; ``callback(server)`` runs when
        it is readable."""
        self.sources[fd] = callback
        for waiter in self.waiters:
            waiter.register(fd, callback)

    def remove_source(self, fd):
        """Stop watching ``fd`` (the caller closes it afterwards)."""
        if self.sources.pop(fd, None) is None:
            return
        for waiter in self.waiters:
            try:
                waiter.unregister(fd)
            except (KeyError, ValueError):
                pass

    def open_waker(self, waiter):
        """Register a socket pair that ``wake()`` writes to; return it, or None.

        Without one (e.g. out of descriptors) the loop still stops, at the next
        ``poll_interval`` tick, exactly like the stdlib's.
        """
        try:
            waker, writer = socket.socketpair()
        except OSError:
            return None
        waker.setblocking(False)
        writer.setblocking(False)
        waiter.register(waker, _Drain(waker))
        with _WAKE_LOCK:
            self.writers = (*self.writers, writer)
        return waker, writer

    def close_waker(self, pair):
        """Unpublish and close a pair made by ``open_waker``."""
        if pair is None:
            return
        waker, writer = pair
        with _WAKE_LOCK:
            self.writers = tuple(w for w in self.writers if w is not writer)
            writer.close()
        waker.close()

    def wake(self):
        """Wake every running ``serve_forever()`` loop of the server."""
        with _WAKE_LOCK:
            for writer in self.writers:
                try:
                    writer.send(b"\0")
                except OSError:
                    # A full buffer already guarantees a wake-up.
                    pass


def _loops_of(server):
    """The server's :class:`_WaitLoops`, made on first use.

    Made lazily rather than in ``BaseServer.__init__``, because code in the wild builds
    servers without calling it and still uses ``handle_request()`` or ``ForkingMixIn``
    (``getattr``: a ``ForkingMixIn`` may even be mixed with a server of its own).
    """
    loops = getattr(server, "_BaseServer__loops", None)
    if loops is None:
        with _WAKE_LOCK:
            loops = getattr(server, "_BaseServer__loops", None)
            if loops is None:
                loops = server._BaseServer__loops = _WaitLoops()
    return loops


#: accept() errors that retrying at once cannot cure: the process or the system is out of
#: descriptors, or the kernel out of memory for a new socket.
_OUT_OF_DESCRIPTORS = frozenset(
    getattr(_errno, name)
    for name in ("EMFILE", "ENFILE", "ENOBUFS", "ENOMEM")
    if hasattr(_errno, name)
)
#: The first pause after such a failure, and the longest one (the pause doubles while the
#: failures go on). Go's net/http and nginx pace their accept loops the same way.
_FIRST_PAUSE = 0.005
_LONGEST_PAUSE = 0.5


class _AcceptPacer:
    """One serve loop's state while ``accept()`` runs out of descriptors.

    ``listening``: whether the loop's waiter watches the server socket; ``resume_at``: when
    it watches it again (None: it does, on probation until a pass without a failure);
    ``pause``: the length of the last pause.
    """

    __slots__ = ("listening", "pause", "resume_at")

    def __init__(self):
        self.listening = True
        self.pause = 0.0
        self.resume_at = None


def _pace_accepts(server, waiter, pacer, poll_interval):
    """The serve loop's slow path after ``accept()`` failed for lack of descriptors.

    A failed ``accept()`` leaves the connection queued and the server socket readable, so
    retrying at once spins. Instead the loop stops watching the socket for a pause that
    doubles while the failures go on, and watches it again when the pause is over or as
    soon as one of the server's requests ends (``_descriptor_freed``). Nothing is accepted
    and dropped: the queued connections are served once descriptors are free.

    Returns ``(pacer, timeout)``: the loop's new pacer (None once an ``accept()`` has
    worked again) and the timeout of its next wait.
    """
    loops = _loops_of(server)
    now = time()
    if loops.exhausted:
        loops.exhausted = False
        if pacer is None:
            pacer = _AcceptPacer()
        pacer.pause = min(pacer.pause * 2, _LONGEST_PAUSE) if pacer.pause else _FIRST_PAUSE
        pacer.resume_at = now + pacer.pause
        if pacer.listening:
            waiter.unregister(server)
            pacer.listening = False
            loops.pausing += 1
    elif pacer.resume_at is None:
        # Watching again, and this pass had no failure: descriptors are back.
        return None, poll_interval
    if loops.freed or now >= pacer.resume_at:
        waiter.register(server)
        pacer.listening = True
        pacer.resume_at = None
        loops.pausing -= 1
        if not loops.pausing:
            loops.freed = False
        return pacer, poll_interval
    remaining = pacer.resume_at - now
    return pacer, remaining if poll_interval is None else min(poll_interval, remaining)


def _descriptor_freed(server):
    """A request of ``server`` ended and closed its descriptors: wake serve loops that
    paused for lack of descriptors, so that they try ``accept()`` again now."""
    loops = getattr(server, "_BaseServer__loops", None)
    if loops is not None and loops.pausing:
        loops.freed = True
        loops.wake()


def _dispatch(server, ready):
    """Run the callbacks among the data of ready sources; True if the server socket
    (data None) is ready."""
    server_ready = False
    for callback in ready:
        if callback is None:
            server_ready = True
        else:
            callback(server)
    return server_ready


class BaseServer:
    """Base class for servers: the request loop and the hooks subclasses override.

    Methods for the caller: ``__init__(server_address, RequestHandlerClass)``,
    ``serve_forever(poll_interval=0.5)``, ``shutdown()``, ``handle_request()``, and
    ``fileno()`` (from the subclass; used by the selector).

    Methods that may be overridden: ``server_bind``, ``server_activate``, ``get_request``,
    ``handle_timeout``, ``verify_request``, ``server_close``, ``process_request``,
    ``shutdown_request``, ``close_request``, ``service_actions``, ``handle_error``.
    ``finish_request`` is meant to be called, not replaced.

    Class attributes: ``timeout`` (seconds ``handle_request()`` waits, ``None`` = forever).
    Instance attributes: ``server_address``, ``RequestHandlerClass``.

    Resource handling: ``BaseServer`` owns no socket; the request is closed by
    ``shutdown_request()`` once ``process_request()`` is done with it.
    Error handling: ``OSError`` from ``get_request()`` drops the request silently; an
    ``Exception`` from ``process_request()`` goes to ``handle_error()``; any other
    ``BaseException`` closes the request and propagates to the caller of the loop.
    """

    timeout = None

    # The server's _WaitLoops once a wait loop or a child needed one (see _loops_of).
    # Name-mangled, like every private attribute of the public classes that the stdlib's
    # classes do not have, so that no subclass or mix-in can collide with it.
    __loops = None

    def __init__(self, server_address, RequestHandlerClass):
        """Store the address and handler class. May be extended, do not override."""
        self.server_address = server_address
        self.RequestHandlerClass = RequestHandlerClass
        # Name-mangled to _BaseServer__is_shut_down / _BaseServer__shutdown_request,
        # the names third-party code reads and sets.
        self.__is_shut_down = threading.Event()
        self.__shutdown_request = False

    def server_activate(self):
        """Activate the server; called by the constructor. May be overridden."""

    def serve_forever(self, poll_interval=0.5):
        """Handle requests one at a time until ``shutdown()`` is called.

        ``shutdown()`` wakes the loop at once. The loop still wakes at least every
        ``poll_interval`` seconds to call ``service_actions()`` (and to notice a stop
        flag set directly on the instance). ``self.timeout`` is ignored.
        """
        self.__is_shut_down.clear()
        try:
            with _new_waiter() as selector:
                # Registering the server first keeps the stdlib's error for a closed
                # server: ValueError("Invalid file descriptor: -1").
                selector.register(self)
                loops = _loops_of(self)
                waker = loops.open_waker(selector)
                try:
                    loops.attach(selector)
                    # Not None while accept() runs out of descriptors: see _pace_accepts.
                    pacer = None
                    wait = poll_interval
                    loops.exhausted = False
                    try:
                        while not self.__shutdown_request:
                            ready = selector.select(wait)
                            # A shutdown during select() ends the loop before another
                            # request is taken (bpo-35017).
                            if self.__shutdown_request:
                                break
                            # The usual wake-up has only the server socket ready (its
                            # data is None).
                            if ready and (ready == _SERVER_ONLY or _dispatch(self, ready)):
                                self._handle_request_noblock()
                            if pacer is not None or loops.exhausted:
                                pacer, wait = _pace_accepts(self, selector, pacer, poll_interval)
                            self.service_actions()
                    finally:
                        if pacer is not None and not pacer.listening:
                            loops.pausing -= 1
                            if not loops.pausing:
                                loops.freed = False
                        loops.detach(selector)
                finally:
                    loops.close_waker(waker)
        finally:
            self.__shutdown_request = False
            self.__is_shut_down.set()

    def shutdown(self):
        """Stop the ``serve_forever()`` loop and wait until it has returned.

        Returns as soon as the loop notices, which is immediate for a loop waiting for
        requests. As in the stdlib it blocks until a ``serve_forever()`` loop runs and
        exits, so calling it from the thread running the loop deadlocks.
        """
        self.__shutdown_request = True
        # A loop that starts after this read sees the flag before it first waits.
        loops = self.__loops
        if loops is not None:
            loops.wake()
        self.__is_shut_down.wait()

    def service_actions(self):
        """Run periodic work; called by ``serve_forever()`` after every wake-up.

        May be overridden by a subclass or mixin (``ForkingMixIn`` reaps children here).
        """

    def handle_request(self):
        """Wait for one request and handle it, honouring ``self.timeout``.

        The wait is the smaller of ``self.timeout`` and the socket's own timeout; when it
        expires, ``handle_timeout()`` is called and its result returned.
        """
        # A timeout set on the socket still limits the wait, as it did before
        # ``self.timeout`` existed.
        timeout = self.socket.gettimeout()
        if timeout is None:
            timeout = self.timeout
        elif self.timeout is not None:
            timeout = min(timeout, self.timeout)
        deadline = None if timeout is None else time() + timeout
        with _new_waiter() as selector:
            selector.register(self)
            loops = _loops_of(self)
            loops.attach(selector)
            try:
                while True:
                    ready = selector.select(timeout)
                    if ready and _dispatch(self, ready):
                        return self._handle_request_noblock()
                    # Woken early (a signal, or a child of ours exiting): wait for the rest.
                    if deadline is not None:
                        timeout = deadline - time()
                        if timeout < 0:
                            return self.handle_timeout()
            finally:
                loops.detach(selector)

    def _handle_request_noblock(self):
        """Take one request and handle it; the server socket must already be readable.

        ``OSError`` from ``get_request()`` (e.g. a failed accept or TLS handshake) is
        ignored. A rejected request is shut down. See the class docstring for errors.
        """
        try:
            request, client_address = self.get_request()
        except OSError as error:
            # Out of descriptors, the connection stays queued and the listener readable:
            # serve_forever() pauses instead of retrying at once (accept-emfile-spin).
            if error.errno in _OUT_OF_DESCRIPTORS:
                _loops_of(self).exhausted = True
            return
        if not self.verify_request(request, client_address):
            self.shutdown_request(request)
            return
        try:
            self.process_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
            self.shutdown_request(request)
        except BaseException:
            # SystemExit, KeyboardInterrupt...: close the connection, then let it stop
            # the caller's loop.
            self.shutdown_request(request)
            raise

    def handle_timeout(self):
        """Called when ``handle_request()`` times out. Overridden by ``ForkingMixIn``."""

    def verify_request(self, request, client_address):
        """Return True to handle the request, False to close it unhandled. May be overridden."""
        return True

    def process_request(self, request, client_address):
        """Handle the request in this thread, then shut it down.

        Overridden by ``ForkingMixIn`` and ``ThreadingMixIn``.
        """
        self.finish_request(request, client_address)
        self.shutdown_request(request)

    def server_close(self):
        """Release the server's resources. May be overridden."""

    def finish_request(self, request, client_address):
        """Handle the request by instantiating ``RequestHandlerClass``."""
        self.RequestHandlerClass(request, client_address, self)

    def shutdown_request(self, request):
        """Shut down and close one request (here: just ``close_request()``)."""
        self.close_request(request)

    def close_request(self, request):
        """Release one request's resources (nothing to do here)."""

    def handle_error(self, request, client_address):
        """Report an exception raised while handling a request, then carry on.

        Prints to ``sys.stderr``: a line of 40 dashes, ``Exception occurred during
        processing of request from <client_address>``, the traceback, 40 dashes.
        May be overridden.
        """
        rule = "-" * 40
        print(rule, file=sys.stderr)
        print(
            "Exception occurred during processing of request from",
            client_address,
            file=sys.stderr,
        )
        _traceback.print_exc()
        print(rule, file=sys.stderr)

    def __enter__(self):
        """Return the server itself."""
        return self

    def __exit__(self, *args):
        """Close the server with ``server_close()`` (never ``shutdown()``)."""
        self.server_close()


class _Drain:
    """Wait-loop callback emptying a wake-up socket, so it does not stay readable."""

    __slots__ = ("_sock",)

    def __init__(self, sock):
        self._sock = sock

    def __call__(self, server):
        try:
            while self._sock.recv(4096):
                pass
        except OSError:
            # Nothing more to read (BlockingIOError) or the pair is already closed.
            pass


class TCPServer(BaseServer):
    """A server on one socket, by default a synchronous TCP server (IPv4 stream).

    Constructor: ``TCPServer(server_address, RequestHandlerClass, bind_and_activate=True)``.
    The socket is ``socket.socket(address_family, socket_type)``; when
    ``bind_and_activate`` is true it is bound and put into listening state at once.

    Class attributes: ``address_family`` (``AF_INET``), ``socket_type``
    (``SOCK_STREAM``), ``request_queue_size`` (5, the listen backlog),
    ``allow_reuse_address`` and (from Python 3.11, as in the stdlib) ``allow_reuse_port``
    (False), ``timeout``.
    Instance attributes: ``socket``; ``server_address`` becomes the bound address.

    Resource handling: if binding or activating raises, the socket is closed before the
    error propagates. Each accepted connection is half-closed (``SHUT_WR``) and closed by
    ``shutdown_request()``; ``server_close()`` closes the listening socket.
    """

    address_family = socket.AF_INET
    socket_type = socket.SOCK_STREAM
    request_queue_size = 5
    allow_reuse_address = False
    if _REUSE_PORT_API:
        allow_reuse_port = False
    # (listener, family, type, proto) for get_request(), per instance once it has run.
    __accept_shape = None

    def __init__(self, server_address, RequestHandlerClass, bind_and_activate=True):
        """Create the socket, then bind and activate it. May be extended, do not override."""
        BaseServer.__init__(self, server_address, RequestHandlerClass)
        self.socket = socket.socket(self.address_family, self.socket_type)
        if not bind_and_activate:
            return
        try:
            self.server_bind()
            self.server_activate()
        except BaseException:
            # No descriptor leaks from a failed bind (bpo-22435).
            self.server_close()
            raise

    def server_bind(self):
        """Apply the reuse options and bind the socket. May be overridden."""
        sock = self.socket
        if self.allow_reuse_address and hasattr(socket, "SO_REUSEADDR"):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # SO_REUSEPORT means something only for IP sockets; Linux >= 6.12.9 rejects it
        # on AF_UNIX with EOPNOTSUPP (gh-128916). Before 3.11 the stdlib has no such
        # option, and ignores the attribute a subclass may set.
        if (
            _REUSE_PORT_API
            and self.allow_reuse_port
            and hasattr(socket, "SO_REUSEPORT")
            and self.address_family in _IP_FAMILIES
        ):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(self.server_address)
        self.server_address = sock.getsockname()

    def server_activate(self):
        """Start listening with a backlog of ``request_queue_size``. May be overridden."""
        self.socket.listen(self.request_queue_size)

    def server_close(self):
        """Close the listening socket. May be overridden."""
        self.socket.close()

    def fileno(self):
        """Return the socket's file descriptor, for selectors."""
        return self.socket.fileno()

    def get_request(self):
        """Accept a connection; return ``(connection, client_address)``. May be overridden.

        The connection is what ``self.socket.accept()`` returns. For a plain
        ``socket.socket`` it is built here from the listener's family, type and protocol
        as numbers, read once per listener: ``accept()`` converts both to enums on every
        call, a cost paid per request for a value that never changes.
        """
        listener = self.socket
        if type(listener) is not socket.socket:  # an SSLSocket, say: its accept() does more
            return listener.accept()
        shape = self.__accept_shape
        if shape is None or shape[0] is not listener:
            shape = self.__accept_shape = (
                listener,
                int(listener.family),
                int(listener.type),
                listener.proto,
            )
        fd, client_address = listener._accept()
        connection = socket.socket(shape[1], shape[2], shape[3], fileno=fd)
        # As accept() does: where an accepted socket inherits the listener's non-blocking
        # mode, a blocking default (no default timeout) is restored.
        if socket.getdefaulttimeout() is None and listener.gettimeout():
            connection.setblocking(True)
        return connection, client_address

    def shutdown_request(self, request):
        """Half-close the connection (so the peer sees EOF), then ``close_request()``."""
        try:
            # close() alone would leave the connection open while other references
            # (a forked child, a makefile() object) still exist.
            request.shutdown(socket.SHUT_WR)
        except OSError:
            # Typically ENOTCONN: the peer is already gone.
            pass
        self.close_request(request)

    def close_request(self, request):
        """Close the connection's socket."""
        request.close()


_IP_FAMILIES = tuple(
    getattr(socket, name) for name in ("AF_INET", "AF_INET6") if hasattr(socket, name)
)


class UDPServer(TCPServer):
    """A synchronous UDP server: every datagram is one request.

    A request is ``(data, server_socket)``; datagrams longer than ``max_packet_size``
    (8192) are truncated by ``recvfrom``. There is no listen step and nothing to close
    per request. It subclasses ``TCPServer`` (as in the stdlib) to share the socket setup.
    """

    allow_reuse_address = False
    if _REUSE_PORT_API:
        allow_reuse_port = False
    socket_type = socket.SOCK_DGRAM
    max_packet_size = 8192

    def get_request(self):
        """Receive one datagram; return ``((data, socket), client_address)``."""
        data, client_address = self.socket.recvfrom(self.max_packet_size)
        return (data, self.socket), client_address

    def server_activate(self):
        """Nothing to do: datagram sockets do not listen."""

    def shutdown_request(self, request):
        """Nothing to shut down for a datagram; calls ``close_request()``."""
        self.close_request(request)

    def close_request(self, request):
        """Nothing to close: the request shares the server's socket."""


_pidfd_open = getattr(os, "pidfd_open", None)


if _HAVE_FORK:

    class ForkingMixIn:
        """Mix-in handling each request in a forked child process.

        Put it first in the bases: ``class S(ForkingMixIn, TCPServer)``.

        Class attributes: ``timeout`` (300), ``max_children`` (40), ``block_on_close``
        (True: ``server_close()`` waits for every child), ``active_children`` (``None``
        until the first fork, then the set of child pids not yet reaped).

        Resource handling: the parent only closes its copy of the request; the child
        handles it, calls ``shutdown_request()`` and exits with ``os._exit``: status 0,
        or 1 after ``handle_error()``. Children are reaped as soon as they exit (see
        :data:`_DEVIATIONS`), and at most ``max_children`` run at once: a fork at the
        limit first waits for one of this server's children to exit.
        """

        timeout = 300
        active_children = None
        max_children = 40
        block_on_close = True
        # {pid: pidfd} of running children, per instance once the first pidfd exists.
        # A pidfd becomes readable when its process exits, which lets every wait loop
        # wake up and reap that child at once, without signals and without touching
        # processes the server did not fork. (Name-mangled: see BaseServer.__loops.)
        __pidfds = None

        def collect_children(self, *, blocking=False):
            """Reap children that have exited; with ``blocking``, wait for all of them.

            First, while ``max_children`` or more children are active, waits for one of
            them to exit.
            """
            if self.active_children is None:
                return
            while len(self.active_children) >= self.max_children:
                if not _wait_for_a_child(self):
                    break
            flags = 0 if blocking else os.WNOHANG
            for pid in list(self.active_children):
                _reap(self, pid, flags)

        def handle_timeout(self):
            """Reap finished children after ``timeout`` seconds without a request.

            May be extended, do not override.
            """
            self.collect_children()

        def service_actions(self):
            """Reap finished children; called on every ``serve_forever()`` iteration."""
            self.collect_children()

        def process_request(self, request, client_address):
            """Fork a child process that handles the request and exits."""
            _make_room_for_a_child(self)
            pid = os.fork()
            if pid == 0:
                _run_child(self, request, client_address)
            if self.active_children is None:
                self.active_children = set()
            self.active_children.add(pid)
            _watch_child(self, pid)
            self.close_request(request)

        def server_close(self):
            """Close the server, then reap children (waiting if ``block_on_close``)."""
            super().server_close()
            self.collect_children(blocking=self.block_on_close)
            # Children still running are no longer watched: the loops are gone. They
            # stay in active_children for a later collect_children().
            pidfds = self.__pidfds
            if pidfds:
                for pid in list(pidfds):
                    _unwatch_child(self, pid)

    # The forking helpers are functions, not methods: see _WaitLoops for why. They use
    # the spelled-out mangled name _ForkingMixIn__pidfds.

    def _run_child(server, request, client_address):
        """In the child: handle the request and exit; this never returns."""
        status = 1
        try:
            server.finish_request(request, client_address)
            status = 0
        except Exception:
            server.handle_error(request, client_address)
        finally:
            try:
                server.shutdown_request(request)
            finally:
                # Never unwind into the parent's code (its loops, finally blocks,
                # atexit handlers) from the child.
                os._exit(status)

    def _make_room_for_a_child(server):
        """Before a fork: reap what has exited, then honour ``max_children``."""
        children = server.active_children
        if not children:
            return
        for pid in list(children):
            _reap(server, pid, os.WNOHANG)
        while len(children) >= server.max_children:
            if not _wait_for_a_child(server):
                break

    def _reap(server, pid, flags):
        """``waitpid`` one of the server's children; True once it is gone and forgotten."""
        try:
            reaped, _status = os.waitpid(pid, flags)
        except ChildProcessError:
            # Already reaped elsewhere (or SIGCHLD is ignored): nothing to wait for.
            reaped = pid
        except OSError:
            return False
        if reaped == 0:
            return False
        server.active_children.discard(pid)
        _unwatch_child(server, pid)
        return True

    def _wait_for_a_child(server):
        """Block until one of the server's children exits and reap it; False if none is
        left."""
        children = server.active_children
        if not children:
            return False
        fds = server._ForkingMixIn__pidfds or {}
        pids = list(children)
        if all(pid in fds for pid in pids):
            with _new_waiter() as selector:
                for pid in pids:
                    selector.register(fds[pid], pid)
                ready = selector.select()
            # A readable pidfd means the process has exited: waitpid returns at once.
            return any([_reap(server, pid, 0) for pid in ready])
        # No pidfds: poll our own pids (never waitpid(-1), which could steal other
        # code's children), backing off to at most 50 ms between rounds.
        delay = 0.001
        while children:
            if any([_reap(server, pid, os.WNOHANG) for pid in list(children)]):
                return True
            _sleep(delay)
            delay = min(delay * 2, 0.05)
        return False

    def _watch_child(server, pid):
        """Open a pidfd for a new child and add it to every wait loop of the server."""
        if _pidfd_open is None:
            return
        try:
            fd = _pidfd_open(pid)
        except OSError:
            # Old kernel, seccomp, or the child is already gone: polling covers it.
            return
        pidfds = server._ForkingMixIn__pidfds
        if pidfds is None:
            pidfds = server._ForkingMixIn__pidfds = {}
        pidfds[pid] = fd
        _loops_of(server).add_source(fd, _ChildExited(pid))

    def _unwatch_child(server, pid):
        """Close a reaped child's pidfd and remove it from the server's wait loops."""
        pidfds = server._ForkingMixIn__pidfds
        if not pidfds:
            return
        fd = pidfds.pop(pid, None)
        if fd is None:
            return
        _loops_of(server).remove_source(fd)
        os.close(fd)
        _descriptor_freed(server)


class _ChildExited:
    """Wait-loop callback: a child's pidfd became readable, so reap that child."""

    __slots__ = ("_pid",)

    def __init__(self, pid):
        self._pid = pid

    def __call__(self, server):
        _reap(server, self._pid, os.WNOHANG)


class _Threads(list):
    """The live non-daemon request threads of a server, joinable by ``server_close()``.

    A list (third-party code takes its ``len`` and iterates it). Threads leave it
    themselves when their request is done; ``append`` also drops dead threads, for
    threads started by code that bypasses ``ThreadingMixIn.process_request``.
    """

    def __init__(self, *args):
        super().__init__(*args)
        # Worker threads remove themselves while the serving thread appends.
        self._lock = threading.Lock()
        # Tracked threads that will not remove themselves; only they need reaping.
        self._foreign = 0

    def append(self, thread):
        """Track ``thread`` unless it is a daemon thread."""
        with self._lock:
            if self._foreign:
                self[:] = [t for t in self if t.is_alive()]
                self._foreign = sum(1 for t in self if getattr(t, "_registry", None) is not self)
            if not thread.daemon:
                super().append(thread)
                if getattr(thread, "_registry", None) is not self:
                    self._foreign += 1

    def pop_all(self):
        """Empty the list and return what it held."""
        with self._lock:
            taken = self[:]
            del self[:]
        return taken

    def join(self):
        """Wait for every tracked thread to finish."""
        for thread in self.pop_all():
            thread.join()

    def reap(self):
        """Drop threads that have finished."""
        with self._lock:
            self[:] = [t for t in self if t.is_alive()]

    def discard(self, thread):
        """Stop tracking ``thread`` if it is tracked."""
        with self._lock:
            for index, tracked in enumerate(self):
                if tracked is thread:
                    del self[index]
                    break


class _NoThreads:
    """Stand-in for ``_Threads`` when nothing has to be joined on close."""

    def append(self, thread):
        """Ignore the thread."""

    def join(self):
        """Nothing to wait for."""


class _RequestThread(threading.Thread):
    """A request thread that leaves its server's ``_threads`` when its work is done.

    Created with the same target and arguments as the stdlib's thread, so its name
    ("Thread-N (process_request_thread)") and exception reporting are unchanged.
    """

    _registry = None
    # The server whose request this thread handles.
    _server = None

    def run(self):
        """Run the target, then untrack this thread."""
        try:
            super().run()
        finally:
            registry = self._registry
            if registry is not None:
                registry.discard(self)
            # The request is shut down and closed by now: its descriptor is free.
            _descriptor_freed(self._server)


class ThreadingMixIn:
    """Mix-in handling each request in a new thread.

    Put it first in the bases: ``class S(ThreadingMixIn, TCPServer)``.

    Class attributes: ``daemon_threads`` (False), ``block_on_close`` (True: non-daemon
    request threads are tracked in ``_threads`` while they run and ``server_close()``
    joins them).

    Resource handling: the thread calls ``shutdown_request()`` when the handler is done.
    Error handling: ``Exception`` from the handler goes to ``handle_error()`` in the
    thread; other exceptions reach ``threading.excepthook``. If the thread cannot be
    started, the error goes to ``handle_error()`` via the serving loop.
    """

    daemon_threads = False
    block_on_close = True
    # Replaced by a per-instance _Threads on the first request when block_on_close is
    # true; kept as a class default because code reads server._threads before that.
    _threads = _NoThreads()

    def process_request_thread(self, request, client_address):
        """Like ``BaseServer.process_request``, run in the new thread, reporting errors."""
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)

    def process_request(self, request, client_address):
        """Start a thread that handles the request."""
        if self.block_on_close:
            threads = vars(self).get("_threads")
            if threads is None:
                threads = self._threads = _Threads()
        else:
            threads = self._threads
        thread = _RequestThread(target=self.process_request_thread, args=(request, client_address))
        thread.daemon = self.daemon_threads
        thread._server = self
        if not thread.daemon and isinstance(threads, _Threads):
            thread._registry = threads
        threads.append(thread)
        try:
            thread.start()
        except BaseException:
            # A thread that never ran must not be joined by server_close().
            if thread._registry is not None:
                thread._registry.discard(thread)
            raise

    def server_close(self):
        """Close the server, then wait for the tracked request threads."""
        super().server_close()
        self._threads.join()


if _HAVE_FORK:

    class ForkingUDPServer(ForkingMixIn, UDPServer):
        """UDP server handling each datagram in a forked child."""

    class ForkingTCPServer(ForkingMixIn, TCPServer):
        """TCP server handling each connection in a forked child."""


class ThreadingUDPServer(ThreadingMixIn, UDPServer):
    """UDP server handling each datagram in a new thread."""


class ThreadingTCPServer(ThreadingMixIn, TCPServer):
    """TCP server handling each connection in a new thread."""


if _HAVE_UNIX:

    class UnixStreamServer(TCPServer):
        """Stream server on a Unix domain socket (the path is not unlinked on close)."""

        address_family = socket.AF_UNIX

    class UnixDatagramServer(UDPServer):
        """Datagram server on a Unix domain socket."""

        address_family = socket.AF_UNIX

    class ThreadingUnixStreamServer(ThreadingMixIn, UnixStreamServer):
        """Unix stream server handling each connection in a new thread."""

    class ThreadingUnixDatagramServer(ThreadingMixIn, UnixDatagramServer):
        """Unix datagram server handling each datagram in a new thread."""

    if _FORKING_UNIX_API:

        class ForkingUnixStreamServer(ForkingMixIn, UnixStreamServer):
            """Unix stream server handling each connection in a forked child (3.12)."""

        class ForkingUnixDatagramServer(ForkingMixIn, UnixDatagramServer):
            """Unix datagram server handling each datagram in a forked child (3.12)."""


class BaseRequestHandler:
    """Base class for request handlers; one instance handles one request.

    The constructor stores ``request``, ``client_address`` and ``server`` as attributes,
    then calls ``setup()``, ``handle()`` and, even if ``handle()`` raised, ``finish()``.
    Subclasses implement ``handle()``, and may keep any per-request state on ``self``.
    """

    def __init__(self, request, client_address, server):
        """Handle the request completely (setup, handle, finish)."""
        self.request = request
        self.client_address = client_address
        self.server = server
        self.setup()
        try:
            self.handle()
        finally:
            self.finish()

    def setup(self):
        """Prepare for ``handle()``; does nothing here."""

    def handle(self):
        """Serve the request; does nothing here."""

    def finish(self):
        """Clean up after ``handle()``; does nothing here."""


class StreamRequestHandler(BaseRequestHandler):
    """Request handler for stream sockets, with file objects ``rfile`` and ``wfile``.

    Class attributes: ``rbufsize`` (-1: buffered reads, to avoid a system call per
    byte), ``wbufsize`` (0: every write is sent at once with ``sendall``), ``timeout``
    (applied to the connection when not None), ``disable_nagle_algorithm`` (sets
    TCP_NODELAY; useful with a buffered ``wfile``). ``connection`` is the socket.
    """

    rbufsize = -1
    wbufsize = 0
    timeout = None
    disable_nagle_algorithm = False

    def setup(self):
        """Configure the connection and create ``rfile`` and ``wfile``."""
        self.connection = connection = self.request
        if self.timeout is not None:
            connection.settimeout(self.timeout)
        if self.disable_nagle_algorithm:
            connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, True)
        self.rfile = connection.makefile("rb", self.rbufsize)
        if self.wbufsize == 0:
            self.wfile = _SocketWriter(connection)
        else:
            self.wfile = connection.makefile("wb", self.wbufsize)

    def finish(self):
        """Flush ``wfile`` (ignoring socket errors) and close both files."""
        if not self.wfile.closed:
            try:
                self.wfile.flush()
            except OSError:
                # The peer may be gone (e.g. ECONNABORTED); the reply is lost anyway.
                pass
        self.wfile.close()
        self.rfile.close()


class _SocketWriter(BufferedIOBase):
    """Unbuffered writable file over a socket: each ``write`` is one ``sendall``.

    Nothing is buffered, with one exception that only the reference ``http.server`` asks
    for: after :func:`_hold_next_write`, the next write is kept back and goes out in the
    same ``sendall`` as the write after it (a reply's header block with the start of its
    body), or at ``flush()``, ``fileno()`` or ``close()``, whichever comes first.
    """

    # None: every write goes straight out. b"": the next write is to be held. Any other
    # bytes: the held write.
    __held = None

    def __init__(self, sock):
        self._sock = sock

    def writable(self):
        """Always True."""
        return True

    def write(self, b):
        """Send all of ``b`` (or keep it, while a hold is in place); return its length in
        bytes."""
        if self.__held is not None:
            return _write_after_held(self, b)
        self._sock.sendall(b)
        with memoryview(b) as view:
            return view.nbytes

    def flush(self):
        """Send a held write, if there is one; nothing else is ever kept back."""
        if self.__held is not None:
            _send_held(self)
        super().flush()

    def fileno(self):
        """The socket's file descriptor (a held write is sent first: the caller may be
        about to write to the descriptor directly)."""
        if self.__held is not None:
            _send_held(self)
        return self._sock.fileno()


def _hold_next_write(writer):
    """Make ``writer``'s next write wait for the one after it, so both go out in one send.

    Only for the reference's own ``_SocketWriter``; returns whether the hold is in place.
    The holder must end it with ``flush()`` once its reply is complete.
    """
    if type(writer) is not _SocketWriter or writer._SocketWriter__held is not None:
        return False
    writer._SocketWriter__held = b""
    return True


def _write_after_held(writer, b):
    """``_SocketWriter.write`` while a hold is in place: keep ``b``, or send it after the
    held write."""
    held = writer._SocketWriter__held
    with memoryview(b) as view:
        size = view.nbytes
        if not held:
            # The write to hold (an empty one leaves the hold waiting for a real one).
            writer._SocketWriter__held = bytes(view)
            return size
        writer._SocketWriter__held = None
        writer._sock.sendall(held + view)
    return size


def _send_held(writer):
    """End a hold: send the held write, if any."""
    held = writer._SocketWriter__held
    writer._SocketWriter__held = None
    if held:
        writer._sock.sendall(held)


class DatagramRequestHandler(BaseRequestHandler):
    """Request handler for datagrams: ``rfile`` holds the packet, ``wfile`` the reply.

    ``finish()`` always sends ``wfile``'s content back to the client, even when it is
    empty (a zero-length datagram), as the stdlib does.
    """

    def setup(self):
        """Unpack the request into ``packet``/``socket`` and create the files."""
        self.packet, self.socket = self.request
        self.rfile = _BytesIO(self.packet)
        self.wfile = _BytesIO()

    def finish(self):
        """Send the reply datagram to the client."""
        self.socket.sendto(self.wfile.getvalue(), self.client_address)


def _present_as_socketserver():
    """Give this module's classes the stdlib's ``__module__``.

    The module is a drop-in for ``socketserver`` and is installed under that name, so its
    classes report the same ``__module__`` (and repr) as the stdlib's. CPython's own
    ``test_all`` finds the public names through it.
    """
    for value in list(globals().values()):
        if isinstance(value, type) and value.__module__ == __name__:
            # Python 3.13 drops a class's __firstlineno__ when __module__ is set; the
            # stdlib's classes have it (inspect.getsource reads it), so it is put back.
            first_line = vars(value).get("__firstlineno__")
            value.__module__ = "socketserver"
            if first_line is not None:
                value.__firstlineno__ = first_line


_present_as_socketserver()
