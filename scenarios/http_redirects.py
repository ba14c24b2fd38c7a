"""``http/redirects``: the trailing-slash redirect of SimpleHTTPRequestHandler (F1, F3, F4).

An existing directory named without a trailing ``/`` gets ``301`` with ``Location`` = the
request path plus ``/``, keeping the query and fragment, and ``Content-Length: 0``. The
``%2f`` trailing slash (gh-134098) changed in 3.13.4/3.14.0b2; the reference has the fix,
so on older versions those rows are a Known difference.
"""

from scenarios._http_files_common import STANDARD, Dir, Row, deviation, get, register_rows

TREE = (
    *STANDARD,
    Dir("a b"),
    Dir("<x>"),
    Dir("a\r\nb"),
    Dir("caf\u00e9"),
)

ROWS = [
    Row("server_answers", get("/sub/"), "Sanity: GET /sub/ lists the directory (200)."),
    Row(
        "absolute_form",
        [get("http://example.com/sub"), get("http://example.com/sub?q#f")],
        "An absolute-form target naming a directory (found under www/http:/example.com): "
        "Location keeps the scheme and host, path plus '/'.",
        tree=(*TREE, Dir("http:/example.com/sub")),
    ),
    Row(
        "dir_without_slash",
        get("/sub"),
        "GET /sub: 301, Location: /sub/, Content-Length: 0, no body (F1).",
    ),
    Row(
        "nested_dir",
        [get("/sub/deeper"), get("/sub//deeper")],
        "A nested directory without its slash: Location is the request path plus '/'.",
    ),
    Row(
        "keeps_query",
        [get("/sub?x=1"), get("/sub?a=1&b=%2F&c")],
        "The query is kept in Location after the added '/' (F1, bpo-23112).",
    ),
    Row(
        "keeps_fragment",
        [get("/sub#frag"), get("/sub?x=1#f"), get("/sub#f?x")],
        "The fragment is kept too: /sub?x=1#f -> /sub/?x=1#f (F1).",
    ),
    Row(
        "empty_query",
        [get("/sub?"), get("/sub#"), get("/sub?#")],
        "An empty query or fragment: urlunsplit drops the empty '?' or '#'.",
    ),
    Row(
        "encoded_names",
        [get("/a%20b"), get("/%3Cx%3E"), get("/caf%C3%A9"), get("/%73ub")],
        "Location repeats the path as sent, still percent-encoded, plus '/'.",
    ),
    Row(
        "raw_names",
        [get(b"/<x>"), get("/caf\u00e9".encode())],
        "Raw '<' '>' and raw UTF-8 bytes: Location repeats them unchanged (the second does "
        "not name the directory: the request line is decoded as Latin-1).",
    ),
    Row(
        "crlf_name",
        get("/a%0D%0Ab"),
        "A directory named 'a\\r\\nb', requested as /a%0D%0Ab: Location stays encoded, no "
        "header injection.",
    ),
    Row(
        "head",
        get("/sub", method="HEAD"),
        "HEAD /sub: the same 301 headers, no body.",
    ),
    Row(
        "symlink_dir",
        get("/out"),
        "A symlink to a directory, named without '/': redirected like a directory.",
    ),
    Row(
        "root_forms",
        [get("/"), get("/?x=1"), get("//")],
        "The root always has its slash: no redirect (the listing title shows the query "
        "before gh-133889).",
    ),
    Row(
        "encoded_trailing_slash_dir",
        [get("/sub%2f"), get("/sub%2F?x=1")],
        "GET /sub%2f: 301 to /sub%2f/ before gh-134098, a 200 listing after (F3).",
        known=[deviation("gh-134098")],
    ),
    Row(
        "encoded_trailing_slash_file",
        [get("/a.txt%2f"), get("/sub/b.txt%2F")],
        "GET /a.txt%2f: the file (200) before gh-134098, 404 after (F3).",
        known=[deviation("gh-134098")],
    ),
    Row(
        "slash_on_file",
        [get("/a.txt/"), get("/a.txt/?x=1"), get("/sub/b.txt//")],
        "A trailing '/' on a file: 404 File not found (F4, bpo-17324).",
    ),
    Row(
        "keep_alive",
        get("/sub", "Host: h", version="HTTP/1.1")
        + get("/sub/", "Host: h", "Connection: close", version="HTTP/1.1"),
        "Under HTTP/1.1 the 301 (Content-Length: 0) keeps the connection open: a pipelined "
        "second request on it is answered.",
        handler_attrs={"protocol_version": "HTTP/1.1"},
        options={"idle": 2.0},
    ),
    Row(
        "empty_dir",
        [get("/empty"), get("/empty/")],
        "An empty directory: 301, then an empty listing.",
    ),
]

register_rows("redirects", ROWS, tree=TREE)
