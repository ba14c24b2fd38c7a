"""Where the reference implementation deliberately differs from the running stdlib.

The reference follows the stdlib of the interpreter it runs on, except for defects a
client can trigger (a hang, a reply without a status line, a path answered the wrong
way, a crash or memory blow-up on bad input) that a later CPython release fixed: the
reference carries those fixes on every version. ``DEVIATIONS`` lists them as data so
that the harness can tell an expected difference from a regression.

Each entry is a dict:

``id``
    the CPython issue (``gh-NNNN``), or a name of our own where there is none.
``module``
    the stdlib module concerned (``"http.server"``, ``"socketserver"``).
``summary``
    what a client sees from the old stdlib and from the reference.
``fixed_in``
    ``{(major, minor): (major, minor, micro)}``: for each listed branch, the first
    release that behaves like the reference. Branches newer than every listed one were
    released with the fix; older or unlisted branches still have the defect. Empty: no
    CPython release behaves like the reference (yet).
``cpython_tests``
    tests of CPython's ``test_httpservers`` that assert the old behaviour, as
    ``"Class.method"``; they fail against the reference where the deviation is active.

Stdlib-only and Python 3.9-compatible, like the rest of ``implementation``.
"""

import sys

DEVIATIONS = [
    {
        "id": "gh-70765",
        "module": "http.server",
        "summary": (
            "A two-word HTTP/0.9 request ('GET /path' + CRLF) is answered at once, without "
            "reading a header block; the old stdlib waits for a blank line, so such a client "
            "hangs. The reference sets headers to an empty MessageClass() (the stdlib fix "
            "uses a plain {}), so handlers that call message methods keep working."
        ),
        "fixed_in": {(3, 13): (3, 13, 10), (3, 14): (3, 14, 1)},
        "cpython_tests": [],
    },
    {
        "id": "gh-54930",
        "module": "http.server",
        "summary": (
            "Errors for a malformed request line (bad or unsupported version, wrong word "
            "count, non-GET HTTP/0.9) get a status line and headers, e.g. "
            "'HTTP/1.0 400 Bad request version ('FUBAR')'; the old stdlib answers them as "
            "HTTP/0.9, with a bare HTML body that HTTP/1.x clients cannot parse."
        ),
        "fixed_in": {(3, 13): (3, 13, 15), (3, 14): (3, 14, 7)},
        "cpython_tests": [],
    },
    {
        "id": "gh-134098",
        "module": "http.server",
        "summary": (
            "A trailing slash is judged after percent-decoding: '/dir%2f' lists the "
            "directory (old: 301 to '/dir%2f/') and '/file%2f' is a 404 (old: the file)."
        ),
        "fixed_in": {(3, 13): (3, 13, 4), (3, 14): (3, 14, 0)},
        "cpython_tests": [],
    },
    {
        "id": "gh-87389",
        "module": "http.server",
        "summary": (
            "CVE-2021-28861: a request path starting with '//' is reduced to a single '/', "
            "so a directory redirect can never produce a scheme-relative Location "
            "('//evil.example/...') pointing at another host. Micro versions from the "
            "CPython changelogs; present in every local interpreter (3.7.16 to 3.13.0)."
        ),
        "fixed_in": {
            (3, 9): (3, 9, 14),
            (3, 10): (3, 10, 6),
            (3, 11): (3, 11, 0),
        },
        "cpython_tests": [],
    },
    {
        "id": "gh-100001",
        "module": "http.server",
        "summary": (
            "log_message writes control characters (U+0000-001F, U+007F-009F) as \\xHH "
            "and doubles backslashes, so a client cannot inject terminal escape sequences "
            "into the server log. Micro versions from the CPython changelogs; present in "
            "every local interpreter (3.7.16 to 3.13.0)."
        ),
        "fixed_in": {
            (3, 9): (3, 9, 16),
            (3, 10): (3, 10, 9),
            (3, 11): (3, 11, 1),
        },
        "cpython_tests": [],
    },
    {
        "id": "gh-119452",
        "module": "http.server",
        "summary": (
            "CGI without fork (have_fork False, e.g. Windows): the POST body is read in "
            "doubling chunks up to Content-Length instead of one read of Content-Length "
            "bytes, so a huge announced length cannot exhaust memory and a body split "
            "across packets is read whole. Not reachable with the default fork path."
        ),
        "fixed_in": {(3, 13): (3, 13, 11), (3, 14): (3, 14, 2)},
        "cpython_tests": [],
    },
    {
        "id": "cgi-environ-leak",
        "module": "http.server",
        "summary": (
            "A CGI request's values (HTTP_USER_AGENT, HTTP_COOKIE, REMOTE_USER, PATH_INFO, "
            "SERVER_PORT, ...) stay out of the server process's own environment. The stdlib "
            "builds the script's environment in copy.deepcopy(os.environ), an os._Environ "
            "whose item assignment still calls putenv: each value lands in the process's "
            "C-level environment (not in the os.environ mapping), so every child the server "
            "starts later without env= (subprocess, os.system, a forked CGI script's own "
            "children) inherits the last request's values. No CPython issue found; never "
            "fixed, and CGIHTTPRequestHandler is gone in 3.15, so 3.15.0 is listed as the "
            "first release without the defect."
        ),
        "fixed_in": {(3, 15): (3, 15, 0)},
        "cpython_tests": [],
    },
    {
        "id": "keepalive-nagle-stall",
        "module": "http.server",
        "summary": (
            "A kept-alive connection gets its replies without the ~40 ms stall of the "
            "stdlib, and exactly the same bytes. The stdlib writes a reply's header block "
            "and its body in two sends, so Nagle's algorithm holds the small body back "
            "until the client acknowledges the header block, which the client delays (40 ms "
            "on Linux) while it waits for the rest: about 23 replies a second. The "
            "reference's SimpleHTTPRequestHandler.do_GET sends the header block with the "
            "start of the body (only where every method in between is the reference's own "
            "and wfile is unbuffered), and after every request of a kept-alive connection "
            "BaseHTTPRequestHandler pushes what Nagle's algorithm still holds (TCP_NODELAY "
            "on and off again), which also covers subclasses that override end_headers, "
            "copyfile, send_head or do_GET. Only timing and TCP segmentation differ. No "
            "CPython issue found; never fixed."
        ),
        "fixed_in": {},
        "cpython_tests": [],
    },
    {
        "id": "accept-emfile-spin",
        "module": "socketserver",
        "summary": (
            "When accept() fails for lack of descriptors (EMFILE, ENFILE, ENOBUFS, ENOMEM), "
            "serve_forever() stops watching the listening socket for 5 ms, doubling up to "
            "0.5 s while the failures go on, or until one of the server's requests ends; "
            "the stdlib retries at once, and since the connection stays queued and the "
            "socket readable, it spins at a full CPU for as long as the shortage lasts. "
            "Queued connections are kept and served once descriptors are free, by both. "
            "handle_request() is unchanged (it returns after the failed accept). No CPython "
            "issue found; never fixed."
        ),
        "fixed_in": {},
        "cpython_tests": [],
    },
]


def _still_defective(fixed_in, version):
    """Return True if the stdlib of ``version`` still has the defect ``fixed_in`` describes."""
    branch = tuple(version[:2])
    release = tuple(version[:3])
    if branch in fixed_in:
        return release < tuple(fixed_in[branch])
    return not fixed_in or branch < max(fixed_in)


def active_deviations(version_info=sys.version_info):
    """Return the entries of ``DEVIATIONS`` where the stdlib of ``version_info`` differs.

    Args:
        version_info: ``sys.version_info`` or any tuple starting ``(major, minor, micro)``.

    Returns:
        A list of the entry dicts (not copies), in ``DEVIATIONS`` order. Pre-releases
        count as their final release: ``(3, 14, 0, 'beta', 1)`` is treated as 3.14.0.
    """
    return [entry for entry in DEVIATIONS if _still_defective(entry["fixed_in"], version_info)]
