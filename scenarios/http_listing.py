"""``http/listing``: directory listings of SimpleHTTPRequestHandler (F8).

A directory without an index page is listed as HTML5: entries sorted case-insensitively,
names ``html.escape``d (quote=False), hrefs ``urllib.parse.quote``d, ``/`` after
directories, ``@`` after symlinks, the title from the unquoted request path (with its
query and fragment before gh-133889), ``Content-type: text/html; charset=<fs encoding>``.
``os.listdir`` failing gives ``404 No permission to list directory``: the catalog runs as
root here, so those rows use the Unprivileged handler (permission bits in force for the
handling thread) next to the plain one (root lists anything).
"""

from scenarios._http_files_common import (
    STANDARD,
    Dir,
    File,
    Link,
    Row,
    expect_status,
    get,
    register_rows,
)

HOSTILE_NAMES = (
    "<b>&.txt",
    'quote".txt',
    "single'.txt",
    "with space.txt",
    "percent%41.txt",
    "hash#.txt",
    "question?.txt",
    "semi;colon.txt",
    "&amp;.txt",
    "<script>alert(1)<\\script>",
    "tab\there.txt",
    "new\nline.txt",
    "ctrl\x01\x7f.txt",
    "plus+equals=.txt",
    "\u00e9t\u00e9 \u2603.txt",
    "back\\slash.txt",
    "colon:.txt",
)

SORTED_NAMES = ("b", "B2", "a", "A1", "_x", "~y", "10", "9", "Zeta", "zeta.", "\u00c9cole", "ecole")

TREE = (
    *STANDARD,
    *(File(f"hostile/{name}", name.encode("utf-8") + b"\n") for name in HOSTILE_NAMES),
    *(File(f"sorted/{name}", b"x\n") for name in SORTED_NAMES),
    File("marks/file.txt", b"file\n"),
    Dir("marks/dir"),
    Link("marks/link_to_file", "file.txt"),
    Link("marks/link_to_dir", "dir"),
    Link("marks/dead_link", "nothing"),
    Link("marks/link_to_outside", "../../outside"),
    File("marks/.hidden", b"hidden\n"),
    Dir("marks/.hidden_dir"),
    File(b"bytes/\xff\xfe.bin", b"not utf-8\n"),
    File(b"bytes/caf\xe9.txt", b"latin-1 name\n"),
    File("bytes/caf\u00e9.txt", b"utf-8 name\n"),
    Dir("<b>"),
    File("<b>/in.txt", b"in\n"),
    Dir("a b"),
    Dir("&amp;"),
    File("locked/x.txt", b"x\n"),
    Dir("locked", mode=0),
    File("xonly/f.txt", b"search only\n"),
    Dir("xonly", mode=0o111),
    File("ronly/f.txt", b"read only\n"),
    Dir("ronly/inner"),
    Dir("ronly", mode=0o444),
)

MANY = (*STANDARD, *(File(f"many/file{n:04d}.txt", b"") for n in range(250)))


ROWS = [
    Row("server_answers", get("/empty/"), "Sanity: an empty directory is listed (200)."),
    Row(
        "root",
        get("/"),
        "The root of the standard tree: files, dirs with '/', symlinks with '@' (a dangling "
        "one too), a UTF-8 name.",
    ),
    Row(
        "hostile_names",
        get("/hostile/"),
        "Names with <, &, quotes, spaces, %, #, ?, control characters, newlines: escaped "
        "in text, percent-encoded in hrefs (F8).",
    ),
    Row(
        "sorting",
        get("/sorted/"),
        "Entries sorted by str.lower(): A1 a B2 b, digits as text, non-ASCII after ASCII.",
    ),
    Row(
        "markers",
        [get("/marks/"), get("/marks/link_to_dir/"), get("/marks/link_to_file")],
        "A directory gets '/', a symlink '@' (a link to a directory: '@' shown, '/' in the "
        "href), dotfiles are listed; links are followed.",
        reaches_outside=True,
    ),
    Row(
        "non_utf8_names",
        [get("/bytes/"), get("/bytes/%FF%FE.bin"), get("/bytes/caf%E9.txt")],
        "Names that are not UTF-8 (surrogateescape): raw bytes in the text, surrogatepass "
        "escapes in hrefs; requesting them by their bytes fails (404).",
    ),
    Row(
        "title_query",
        [get("/sub/?x=<script>#"), get("/sub/?q=1&r=%3Cb%3E")],
        "The title and h1 show the query (escaped) before gh-133889, only the path after.",
    ),
    Row(
        "title_fragment",
        get("/sub/#frag"),
        "A fragment sent by the client: in the title before gh-133889.",
    ),
    Row(
        "title_escaping",
        [get("/%3Cb%3E/"), get("/a%20b/"), get("/%26amp%3B/"), get(b"/<b>/")],
        "The title is the unquoted path, HTML-escaped: <b> shows as &lt;b&gt;, %26amp%3B "
        "as &amp;amp;.",
    ),
    Row(
        "title_slashes",
        [get("/sub//"), get("//sub/"), get("/sub/./"), get("/sub/deeper/../")],
        "Extra slashes and dot segments: the listing is of the normalized directory, the "
        "title repeats the request path (after the leading // collapse).",
    ),
    Row(
        "head",
        get("/sub/", method="HEAD"),
        "HEAD on a directory: the listing's headers (Content-Length of the page), no body.",
    ),
    Row(
        "many_entries",
        get("/many/"),
        "250 entries: the page is long (the body recorded as length and digest).",
        long=True,
        tree=MANY,
    ),
    Row(
        "locked_as_root",
        [get("/locked/"), get("/locked/x.txt")],
        "A chmod-000 directory, served by root: listed, and its file served.",
    ),
    Row(
        "locked",
        [get("/locked/"), get("/locked"), get("/locked/x.txt")],
        "A chmod-000 directory with permission bits in force: 404 No permission to list "
        "directory; still a directory (301 without '/'); its file 404.",
        handler="Unprivileged",
        check=expect_status(404, 301, 404),
    ),
    Row(
        "search_only",
        [get("/xonly/"), get("/xonly/f.txt")],
        "A directory with mode 0111 (search, no read): not listable (404), its file served.",
        handler="Unprivileged",
        check=expect_status(404, 200),
    ),
    Row(
        "read_only",
        [get("/ronly/"), get("/ronly/f.txt")],
        "A directory with mode 0444 (read, no search): listed, but entries cannot be "
        "stat'ed so none gets '/'; its file 404.",
        handler="Unprivileged",
        check=expect_status(200, 404),
    ),
    Row(
        "through_symlink",
        [get("/out/"), get("/out/?x")],
        "A symlink to a directory outside the root: followed and listed (documented).",
        reaches_outside=True,
    ),
    Row(
        "undecodable_name",
        [get("/%ff/"), get("/%ff/?q=%fe")],
        "/%ff/ is not UTF-8: translate_path falls back to U+FFFD and finds the directory "
        "named so; the listing's title falls back the same way (errors='surrogatepass' "
        "first, then replacement).",
        tree=(*STANDARD, Dir("\ufffd"), File("\ufffd/x.txt", b"x\n")),
    ),
]

register_rows("listing", ROWS, tree=TREE)
