"""``http/paths``: how SimpleHTTPRequestHandler maps a request path to a file (F5, F6, F2).

``translate_path`` drops the query and fragment, unquotes, normalizes, ignores ``.``,
``..`` and components containing a separator, and joins the rest under ``directory``.
Every traversal attempt aims at files the scenario put just outside the served root
(``../outside/secret.txt``, ``../secret.txt``), so a broken translation serves bytes that
show in the diff. Symlinks inside the root are followed (documented).
"""

from scenarios._http_files_common import Row, get, register_rows

ROWS = [
    Row("server_answers", get("/a.txt"), "Sanity: GET /a.txt serves the file (200)."),
    Row(
        "nested",
        [get("/sub/b.txt"), get("/sub/deeper/c.txt")],
        "Files in nested directories are served.",
    ),
    Row(
        "dotdot_etc_passwd",
        get("/../../etc/passwd"),
        "GET /../../etc/passwd: the '..' components are dropped, so 404 (F5).",
    ),
    Row(
        "dotdot_outside",
        [get("/../secret.txt"), get("/../outside/secret.txt"), get("/sub/../../secret.txt")],
        "'..' climbing to files just outside the served root: each 404 (F5).",
    ),
    Row(
        "relative_dotdot",
        [get("../secret.txt"), get("../outside/secret.txt"), get("%2e%2e/secret.txt"), get("..")],
        "A target without the leading '/': normpath keeps a leading '..' there, so only the "
        "'..' check in translate_path keeps these inside the root (404, and '..' is the "
        "root: 301).",
    ),
    Row(
        "encoded_dotdot",
        [get("/%2e%2e/a.txt"), get("/%2e%2e/secret.txt"), get("/%2E%2E/%2E%2E/outside/secret.txt")],
        "Percent-encoded '..' (%2e%2e, %2E%2E): unquoted then normalized away; /%2e%2e/a.txt "
        "serves the root's a.txt, the others 404 (F5).",
    ),
    Row(
        "encoded_dot_in_name",
        [get("/a%2etxt"), get("/sub/%62.txt"), get("/%61%2E%74%78%74")],
        "Percent-encoded letters and dots in a name are unquoted: /a%2etxt is a.txt (F5).",
    ),
    Row(
        "encoded_slash_dotdot",
        [
            get("/..%2f..%2fetc%2fpasswd"),
            get("/..%2fsecret.txt"),
            get("/sub%2f..%2f..%2fsecret.txt"),
        ],
        "'..%2f' sequences: the %2f becomes a separator before normalizing, so no escape (F5).",
    ),
    Row(
        "encoded_slash_middle",
        [get("/sub%2fb.txt"), get("/sub%2Fdeeper%2Fc.txt")],
        "An encoded slash in the middle acts as a separator: /sub%2fb.txt is sub/b.txt.",
    ),
    Row(
        "encoded_backslash",
        [get("/sub%5cb.txt"), get("/..%5csecret.txt"), get("/..%5c..%5coutside%5csecret.txt")],
        "Encoded backslashes (%5c) are ordinary name characters on POSIX: 404, no traversal.",
    ),
    Row(
        "raw_backslash",
        [get(b"/sub\\b.txt"), get(b"/..\\secret.txt"), get(b"\\..\\..\\secret.txt")],
        "Raw backslashes in the request path: name characters on POSIX, 404, no traversal.",
    ),
    Row(
        "nul_encoded",
        get("/a.txt%00"),
        "GET /a.txt%00: open() raises ValueError (embedded null byte), which send_head does "
        "not catch: handle_error, and the client gets zero bytes (F6, gh-103223).",
    ),
    Row(
        "nul_encoded_dir",
        get("/sub%00/b.txt"),
        "A NUL byte inside a directory component: os.path.isdir says False, open() raises "
        "ValueError; zero bytes to the client (F6).",
    ),
    Row(
        "nul_raw",
        get(b"/a.txt\x00"),
        "A raw NUL byte in the request path: the same unhandled ValueError (F6).",
    ),
    Row(
        "nul_in_query",
        [get("/a.txt?x=%00"), get("/a.txt#%00")],
        "A NUL byte in the query or fragment is dropped with it: 200.",
    ),
    Row(
        "double_slash_redirect",
        [get("//evil.example/..%2f..%2fsub"), get("//evil.example/%2e%2e/sub")],
        "CVE-2021-28861 open redirect: a path starting with // names a directory; the 301 "
        "Location must start with a single / (F2, gh-87389).",
    ),
    Row(
        "double_slash_file",
        [get("//a.txt"), get("///a.txt"), get("//sub//b.txt")],
        "Leading and inner runs of slashes still find the file.",
    ),
    Row(
        "backslash_host_redirect",
        [get(b"/\\evil.example/%2e%2e%2fsub"), get(b"/%5cevil.example/%2e%2e%2fsub")],
        "/\\host/%2e%2e%2fdir: the 301 Location keeps the backslash, which browsers read as "
        "//host (H27, gh-132826: not collapsed).",
    ),
    Row(
        "query_string",
        [get("/a.txt?download=1&path=../../etc/passwd"), get("/a.txt?"), get("/a.txt?/../x")],
        "The query is dropped before mapping, whatever it contains.",
    ),
    Row(
        "fragment",
        [get("/a.txt#frag"), get("/a.txt#x?y"), get("/a.txt?x#y"), get("/#/a.txt")],
        "A fragment (and a '?' after '#') is dropped before mapping; /#/a.txt lists the root "
        "(its title shows the fragment before gh-133889).",
    ),
    Row(
        "dot_segments",
        [
            get("/./a.txt"),
            get("/sub/./b.txt"),
            get("/sub/deeper/../b.txt"),
            get("/sub/.."),
            get("/."),
        ],
        "'.' and '..' segments inside the root: normalized; /sub/.. and /. name the root "
        "without a trailing slash, so 301.",
    ),
    Row(
        "symlinks",
        [get("/out/secret.txt"), get("/out.txt"), get("/dangling"), get("/out")],
        "Symlinks out of the root are followed (documented); a dangling one is 404; a link "
        "to a directory without '/' is redirected.",
        reaches_outside=True,
    ),
    Row(
        "absolute_uri",
        [get("http://example.com/a.txt"), get("http://example.com/"), get("a.txt")],
        "An absolute-form target or one without a leading '/': mapped as plain words "
        "(http:, example.com, ...), not as a URL.",
    ),
    Row(
        "utf8_names",
        [get("/%C3%A9.txt"), get("/\u00e9.txt".encode("utf-8")), get("/%E9.txt")],
        "A UTF-8 name, percent-encoded and raw (the request line is Latin-1: raw bytes do not "
        "round-trip), and a Latin-1 %E9 (not UTF-8: 404).",
    ),
    Row(
        "bad_percent",
        [get("/a%zz.txt"), get("/a.txt%"), get("/%"), get("/%ff%fe")],
        "Malformed or non-UTF-8 percent escapes: unquote leaves or replaces them; 404.",
    ),
    Row(
        "long_component",
        get("/" + "a" * 300),
        "A component longer than NAME_MAX (ENAMETOOLONG): 404 File not found.",
    ),
    Row(
        "long_path",
        [
            get("/sub" * 1500 + "/b.txt"),
            get("/./" * 3000 + "a.txt"),
            get("/x/.." * 2000 + "/a.txt"),
        ],
        "Paths longer than PATH_MAX: 404; thousands of '.'/'..' segments still normalize "
        "to /a.txt.",
    ),
    Row(
        "workdir_files",
        [get("/../stderr"), get("/%2e%2e/stdout"), get("/..%2fstderr")],
        "Traversal aimed at the server's own capture files next to the root: 404 each.",
    ),
]

register_rows("paths", ROWS)
