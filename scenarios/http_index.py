"""``http/index``: index pages of SimpleHTTPRequestHandler (F7).

For a directory requested with its trailing slash, ``index.html`` then ``index.htm`` is
served if it is a regular file (gh-100474: a directory named ``index.html`` is skipped);
otherwise the directory is listed. 3.12 made the names a class attribute, ``index_pages``
(gh-91219); on 3.11 a subclass setting it changes nothing.
"""

import os

from harness.scenario import Run
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

TREE = (
    *STANDARD,
    File("withindex/index.html", b"<h1>withindex/index.html</h1>\n"),
    File("withindex/other.txt", b"other\n"),
    File("withhtm/index.htm", b"<h1>withhtm/index.htm</h1>\n"),
    File("both/index.html", b"<h1>both/index.html</h1>\n"),
    File("both/index.htm", b"<h1>both/index.htm</h1>\n"),
    File("idxdir/index.html/inner.txt", b"inner\n"),
    Dir("idxdir2/index.html"),
    File("idxdir2/index.htm", b"<h1>idxdir2/index.htm</h1>\n"),
    Link("idxlink/index.html", "../withindex/index.html"),
    Link("idxdangling/index.html", "missing.html"),
    File("upper/INDEX.HTML", b"<h1>upper</h1>\n"),
    File("upper/Index.htm", b"<h1>Upper</h1>\n"),
    File("home/home.html", b"<h1>home/home.html</h1>\n"),
    File("home/index.html", b"<h1>home/index.html</h1>\n"),
    File("locked/index.html", b"<h1>locked</h1>\n", mode=0),
    File("emptyindex/index.html", b""),
)

ROOT_TREE = (File("index.html", b"<h1>root index</h1>\n"), File("a.txt", b"hello a\n"))


def record_privileges(run: Run, replies: list) -> None:
    """Record whether the catalog runs as root (root reads chmod-000 files)."""
    run.record("runs as root", hasattr(os, "geteuid") and os.geteuid() == 0)


ROWS = [
    Row("server_answers", get("/withindex/"), "Sanity: GET /withindex/ serves its index.html."),
    Row("index_htm", get("/withhtm/"), "Only index.htm present: it is served (F7)."),
    Row(
        "html_before_htm",
        get("/both/"),
        "Both present: index.html wins over index.htm (F7).",
    ),
    Row(
        "index_is_directory",
        [get("/idxdir/"), get("/idxdir/index.html"), get("/idxdir/index.html/")],
        "A directory named index.html is not an index page: the parent is listed "
        "(gh-100474); the directory itself redirects and lists.",
    ),
    Row(
        "index_dir_then_htm",
        get("/idxdir2/"),
        "index.html is a directory, index.htm a file: index.htm is served.",
    ),
    Row(
        "index_symlink",
        [get("/idxlink/"), get("/idxdangling/")],
        "index.html as a symlink to a file is served; a dangling one is not a file, so the "
        "directory is listed.",
    ),
    Row(
        "direct",
        [get("/withindex/index.html"), get("/withindex/index.htm"), get("/withindex/other.txt")],
        "The index page by name, a missing index.htm (404), a sibling file.",
    ),
    Row(
        "redirect_first",
        [get("/withindex"), get("/withindex?x=1")],
        "A directory with an index, named without '/': 301 first, no index served.",
    ),
    Row(
        "root_index",
        [get("/"), get("//"), get("/?x=1")],
        "index.html at the root is served for /, // and /?x=1.",
        tree=ROOT_TREE,
    ),
    Row(
        "index_pages_attr",
        [get("/home/"), get("/withhtm/")],
        "HomePages sets index_pages = ('home.html', 'index.html'): used from 3.12 "
        "(gh-91219); 3.11 ignores the attribute and serves index.html.",
        handler="HomePages",
    ),
    Row(
        "index_pages_empty",
        [get("/withindex/"), get("/both/")],
        "NoIndexPages sets index_pages = (): a listing from 3.12, the index on 3.11.",
        handler="NoIndexPages",
    ),
    Row(
        "case_sensitive",
        get("/upper/"),
        "INDEX.HTML and Index.htm are not index pages (names compare exactly): a listing.",
    ),
    Row(
        "head",
        get("/withindex/", method="HEAD"),
        "HEAD on a directory with an index: the index's headers, no body.",
    ),
    Row(
        "query_fragment",
        [get("/withindex/?x=1"), get("/withindex/#f"), get("/withindex/?a#b")],
        "The query and fragment do not stop the index page from being served.",
    ),
    Row(
        "empty_index",
        get("/emptyindex/"),
        "An empty index.html is served as an empty 200 (Content-Length: 0).",
    ),
    Row(
        "locked_as_root",
        [get("/locked/"), get("/locked/index.html")],
        "A chmod-000 index.html, served by a root process: root reads it, 200 (recorded "
        "with whether the catalog runs as root).",
        check=record_privileges,
    ),
    Row(
        "locked",
        [get("/locked/"), get("/locked/index.html")],
        "A chmod-000 index.html with permission bits in force (the Unprivileged handler "
        "drops root's override): it is a file, so it is chosen, and open() fails: 404.",
        handler="Unprivileged",
        check=expect_status(404, 404),
    ),
]

register_rows("index", ROWS, tree=TREE)
