"""The request grammars of the ``http-files``, ``http-cgi`` and ``http-errors`` families.

Each generator takes a ``Chooser`` (``harness.fuzz.choice``) and returns the bytes of one
connection, aimed at the tree of ``harness.fuzz.tree``:

- ``site_path``: request paths from the tree's names: percent-encoded forms of every
  character, dot segments, ``//`` and ``///``, backslashes, a trailing ``/`` or ``%2f``,
  queries and fragments, absolute-form URIs, lengths around the limits (a name of 255
  bytes, a path of 4096, a request line of 65536).
- ``files_request``: GET, HEAD, POST or an unknown method for such a path, with
  ``If-Modified-Since`` in every date form (valid, obsolete, zone-less, out of range,
  garbage), ``If-None-Match``, both, or a ``Range``.
- ``cgi_request``: a script of ``cgi-bin`` (fork path) or ``htbin`` (subprocess path),
  with PATH_INFO, a query, ``Authorization`` forms, ``Content-Length`` forms, bodies,
  control characters and NULs in header values.
- ``error_request``: a request made to reach one ``send_error`` path (400, 403, 404, 414,
  431, 501, 505) or the directory redirect (301), with any method, HEAD included.
"""

from __future__ import annotations

import email.utils
import time

from harness.fuzz.choice import Chooser
from harness.fuzz.grammar import (
    REQUEST_LINE_LIMIT,
    VERSIONS,
    limit_request,
    mutate,
)
from harness.fuzz.tree import PATHS

#: The tree's files are all this old (``scenarios._http_files_common.MTIME``).
MTIME = 1_700_000_000

SITE_METHODS = ((45, b"GET"), (25, b"HEAD"), (10, b"POST"), (4, b"PUT"), (3, b"OPTIONS"))
SITE_METHODS += ((3, b"FOO"), (3, b"get"), (3, b"head"), (2, b"DELETE"), (2, b"post"))
SITE_VERSIONS = ((60, b"HTTP/1.0"), (30, b"HTTP/1.1"), (5, b""), (5, None))
#: How a segment is written: as is, every byte percent-encoded (upper or lower hex),
#: some bytes encoded, with a percent-encoded byte of any value added.
ENCODINGS = ((60, "plain"), (8, "all"), (4, "all-lower"), (15, "some"), (13, "odd-byte"))
SEPARATORS = ((80, b"/"), (6, b"//"), (3, b"///"), (4, b"\\"), (4, b"%2f"), (3, b"%2F"))
DOT_SEGMENTS = (b".", b"..", b"%2e", b"%2e%2e", b".%2e", b"%2E%2E", b"...", b"..;")
LEADS = ((80, b""), (6, b"/"), (3, b"//"), (4, b"http://h.example"), (3, b"HTTP://H.EXAMPLE:80"))
LEADS += ((2, b"http://[::1]"), (2, b"*"))
TRAILS = ((60, b""), (15, b"/"), (8, b"%2f"), (4, b"%2F"), (4, b"//"), (3, b"/."), (3, b"/.."))
TRAILS += ((3, b"%2e"),)
QUERIES = ((60, b""), (8, b"?"), (10, b"?a=b"), (4, b"?x=<script>"), (4, b"?%2e%2e/x"))
QUERIES += ((4, b"#frag"), (4, b"?a=b#c"), (3, b"??"), (3, b"?/../x"))
#: A query is not decoded to find the file, but a listing's title decodes it whole.
QUERIES += ((3, b"?%ff"), (3, b"?a=%c3%28"))
LONG = ((96, 0), (1, 255), (1, 256), (1, 4096), (1, REQUEST_LINE_LIMIT))

CONDITIONS = ((40, "none"), (30, "ims"), (10, "inm"), (10, "both"), (10, "range"))
#: Instants around the tree's mtime, and far from it.
INSTANTS = (MTIME, MTIME - 1, MTIME + 1, MTIME - 86400 * 400, MTIME + 86400 * 400, 0)
INSTANTS += (2**31 + 5,)
DATE_FORMS = ("imf", "rfc850", "asctime", "zoneless", "numeric-zone", "named-zone")
DATE_FORMS += ("lower", "two-digit-year", "out-of-range", "garbage")
GARBAGE_DATES = (
    b"",
    b"garbage",
    b"0",
    b"-1",
    b"Tue, 14 Nov 2023",
    b"Tue, 32 Nov 2023 25:61:61 GMT",
)
GARBAGE_DATES += (b"Tue, 14 Nov 99999 22:13:20 GMT", b"Tue, 14 Nov 0000 22:13:20 GMT", b"\xff")
ZONES = (b"+0000", b"-0500", b"+0100", b"+2400", b"UTC", b"UT", b"EST", b"PST", b"Z", b"XYZ")
ETAGS = (b"*", b'"x"', b'W/"x"', b"", b"garbage", b'"a", "b"')
RANGES = (b"bytes=0-10", b"bytes=-5", b"bytes=5-", b"bytes=0-0,2-3", b"bytes=abc")
RANGES += (b"lines=1-2", b"bytes=99999-", b"bytes=10-5")


def _encode_segment(c: Chooser, segment: bytes) -> bytes:
    how = c.choose(ENCODINGS)
    if how == "plain" or not segment:
        return segment
    if how in ("all", "all-lower"):
        text = b"".join(b"%%%02X" % b for b in segment)
        return text.lower() if how == "all-lower" else text
    if how == "some":
        return b"".join(b"%%%02X" % b if c.chance(30) else bytes([b]) for b in segment)
    position = c.between(0, len(segment))
    odd = b"%%%02X" % c.between(0, 255)
    return segment[:position] + odd + segment[position:]


def site_path(c: Chooser, paths: tuple[bytes, ...] = PATHS) -> bytes:
    """A request target for a path of the tree (see the module docstring)."""
    raw = c.pick(paths)
    segments = raw.strip(b"/").split(b"/") if raw.strip(b"/") else []
    if c.chance(15):  # dot segments at random places
        for _ in range(c.between(1, 3)):
            segments.insert(c.between(0, len(segments)), c.pick(DOT_SEGMENTS))
    out = c.choose(LEADS) + b"/"
    for index, segment in enumerate(segments):
        if index:
            out += c.choose(SEPARATORS)
        out += _encode_segment(c, segment)
    if raw.endswith(b"/") and segments:
        out += b"/"
    out += c.choose(TRAILS)
    length = c.choose(LONG)
    if length:
        pad = length - len(out) + c.between(-2, 2)
        out += (b"/" if length == 4096 else b"") + b"n" * max(0, pad)
    return out + c.choose(QUERIES)


def http_date(instant: int, form: str) -> bytes:
    """``instant`` as an HTTP date of ``form`` (``DATE_FORMS`` but the garbage ones)."""
    t = time.gmtime(instant)
    imf = email.utils.formatdate(instant, usegmt=True).encode()
    if form == "rfc850":
        return time.strftime("%A, %d-%b-%y %H:%M:%S GMT", t).encode()
    if form == "asctime":
        return time.strftime("%a %b %d %H:%M:%S %Y", t).encode().replace(b" 0", b"  ", 1)
    if form == "zoneless":
        return imf[: -len(b" GMT")]
    if form == "lower":
        return imf.lower()
    if form == "two-digit-year":
        return time.strftime("%a, %d %b %y %H:%M:%S GMT", t).encode()
    return imf


def date_value(c: Chooser) -> bytes:
    """An ``If-Modified-Since`` value: any form, any instant of ``INSTANTS``."""
    form = c.pick(DATE_FORMS)
    if form in ("garbage", "out-of-range"):
        return c.pick(GARBAGE_DATES)
    date = http_date(c.pick(INSTANTS), "imf" if form.endswith("zone") else form)
    if form.endswith("zone"):
        return date[: -len(b"GMT")] + c.pick(ZONES)
    return date


def _version(c: Chooser) -> bytes:
    version = c.choose(SITE_VERSIONS)
    return c.pick(VERSIONS) if version is None else version


def _render(
    method: bytes, target: bytes, version: bytes, headers: list[bytes], body: bytes
) -> bytes:
    line = b" ".join([method, target] + ([version] if version else []))
    return line + b"\r\n" + b"".join(h + b"\r\n" for h in headers) + b"\r\n" + body


def files_request(c: Chooser) -> bytes:
    """A request to ``SimpleHTTPRequestHandler`` for a path of the tree (see the module
    docstring); one in five gets byte-level edits as well."""
    method, target, version = c.choose(SITE_METHODS), site_path(c), _version(c)
    headers = [b"Host: h.example"] if c.chance(50) else []
    condition = c.choose(CONDITIONS)
    if condition in ("ims", "both"):
        headers.append(b"If-Modified-Since: " + date_value(c))
    if condition in ("inm", "both"):
        headers.append(b"If-None-Match: " + c.pick(ETAGS))
    if condition == "range":
        headers.append(b"Range: " + c.pick(RANGES))
    body = b""
    if method.upper() == b"POST" and c.chance(50):
        body = b"a=b"
        headers.append(b"Content-Length: 3")
    if version == b"HTTP/1.1" and c.chance(20):
        headers.append(c.pick((b"Connection: keep-alive", b"Connection: close")))
    data = _render(method, target, version, headers, body)
    return mutate(c, data, c.between(1, 3)) if c.chance(20) else data


SCRIPTS = (b"env.sh", b"echo.sh", b"envall.sh", b"fail.sh", b"noexec.sh", b"missing.sh")
SCRIPTS += (b"sub", b"sub/inner.sh", b"", b"data.txt", b"env.py")
SCRIPT_WEIGHTS = (30, 20, 6, 8, 6, 6, 4, 6, 3, 4, 1)
CGI_DIRS = ((50, b"/cgi-bin/"), (40, b"/htbin/"), (3, b"/x/../cgi-bin/"), (2, b"//cgi-bin/"))
CGI_DIRS += ((2, b"/./htbin/"), (2, b"/CGI-BIN/"), (1, b"/cgi-bin%2f"))
PATH_INFOS = ((50, b""), (20, b"/extra"), (10, b"/a/b/"), (5, b"/%2e%2e/x"), (5, b"/sp%20ace"))
PATH_INFOS += ((5, b"//x"), (5, b"/.."), (5, b"/"))
CGI_QUERIES = ((30, b""), (20, b"?a=b"), (10, b"?a=b&c=d"), (15, b"?noequals"), (5, b"?x+y"))
CGI_QUERIES += ((5, b"?a=%00"), (5, b"?"), (5, b"?a=%20b"), (5, b"?-n"))
CGI_METHODS = ((40, b"GET"), (35, b"POST"), (10, b"HEAD"), (5, b"PUT"), (5, b"post"), (5, b"get"))
AUTHORIZATIONS = (b"Basic dXNlcjpwdw==", b"Basic", b"Basic !!!", b"Basic dXNlcg==", b"Bearer t")
AUTHORIZATIONS += (b"basic dXNlcjpwdw==", b"Basic \xc3\xa9", b"Basic  dXNlcjpwdw==", b"")
LENGTHS = (b"0", b"5", b"abc", b"-1", b"5 ", b"1000", b"100000", b"")
BODIES = (b"", b"a=b", b"hello", b"x" * 100, b"\x00\xff\r\n")
CONTROLS = (b"\x00", b"\x01", b"\x1b[31m", b"\x7f", b"\t", b"\x85")
EXTRA_HEADERS = (b"User-Agent", b"Cookie", b"Referer", b"Accept", b"Content-Type")
EXTRA_VALUES = (b"fuzz/1.0", b"a=1; b=2", b"text/plain", b"application/x-www-form-urlencoded")


def cgi_request(c: Chooser) -> bytes:
    """A request for a CGI script (see the module docstring)."""
    method = c.choose(CGI_METHODS)
    target = c.choose(CGI_DIRS) + SCRIPTS[c.weighted(SCRIPT_WEIGHTS)]
    target += c.choose(PATH_INFOS) + c.choose(CGI_QUERIES)
    headers = []
    if c.chance(30):
        headers.append(b"Authorization: " + c.pick(AUTHORIZATIONS))
    body = c.pick(BODIES) if method.upper() == b"POST" else b""
    if body or c.chance(30):
        length = c.pick(LENGTHS) if c.chance(40) else b"%d" % len(body)
        headers.append(b"Content-Length: " + length)
    for _ in range(c.between(0, 3)):
        value = c.pick(EXTRA_VALUES)
        if c.chance(20):
            value += c.pick(CONTROLS)
        headers.append(c.pick(EXTRA_HEADERS) + b": " + value)
    data = _render(method, target, _version(c), headers, body)
    return mutate(c, data, 1) if c.chance(10) else data


#: The ``send_error`` paths a client can reach, with the 301 redirect.
TRIGGERS = ("missing", "file-slash", "locked-dir", "locked-file", "dir-redirect")
TRIGGERS += ("bad-version", "http2", "word-count", "http09-method", "long-line")
TRIGGERS += ("header-count", "header-line", "unknown-method", "post-file", "cgi-noexec")
TRIGGERS += ("cgi-dir", "cgi-missing", "nul-path", "folded-header")
ANY_METHODS = (b"GET", b"HEAD", b"POST", b"PUT", b"OPTIONS", b"FOO", b"head", b"get")


def error_request(c: Chooser) -> bytes:
    """A request aimed at one error path of ``TRIGGERS``, with any method."""
    trigger = c.pick(TRIGGERS)
    method = c.pick(ANY_METHODS)
    version = c.pick((b"HTTP/1.0", b"HTTP/1.1"))
    target = {
        "missing": b"/missing.txt",
        "file-slash": b"/file.txt/",
        "locked-dir": b"/lockeddir/",
        "locked-file": b"/locked.txt",
        "dir-redirect": b"/noindex",
        "cgi-noexec": b"/cgi-bin/noexec.sh",
        "cgi-dir": b"/cgi-bin/sub",
        "cgi-missing": b"/cgi-bin/missing.sh",
        "nul-path": b"/file%00.txt",
    }.get(trigger, b"/file.txt")
    headers = [b"Host: h.example"] if c.chance(50) else []
    if trigger == "bad-version":
        version = c.pick((b"HTTP/1.x", b"HTTP/abc", b"FUBAR", b"HTTP/1.1.1", b"HTTP/-1.0"))
    elif trigger == "http2":
        version = c.pick((b"HTTP/2.0", b"HTTP/3.0", b"HTTP/10.0"))
    elif trigger == "word-count":
        return c.pick((method, method + b" / HTTP/1.0 extra")) + b"\r\n\r\n"
    elif trigger == "http09-method":  # HTTP/0.9 knows GET only
        return (b"POST" if method == b"GET" else method) + b" " + target + b"\r\n"
    elif trigger == "long-line":  # the line's length stays around the limit
        delta = c.between(-1, 2) - (len(method) - 3)
        return method + limit_request("request_line", delta, version)[3:]
    elif trigger == "header-count":
        return method + limit_request("header_count", c.between(-1, 2), version)[3:]
    elif trigger == "header-line":
        return method + limit_request("header_line", c.between(-1, 2), version)[3:]
    elif trigger == "unknown-method":
        method = c.pick((b"FOO", b"PATCH", b"BREW", b"G\xc3\xa9T"))
    elif trigger == "post-file":
        method = b"POST"
        headers.append(b"Content-Length: 0")
    elif trigger == "folded-header":
        headers.append(b" folded: value")
    return _render(method, target, version, headers, b"")
