"""``http/types``: Content-type of files served by SimpleHTTPRequestHandler (F10, F11).

``guess_type`` looks the extension up in ``extensions_map`` (``.gz``, ``.Z``, ``.bz2``,
``.xz``), exactly then lower-cased, then asks ``mimetypes`` (pinned by the agent to its
built-in table, ``mimetypes.init(files=[])``), then falls back to
``application/octet-stream``. Success replies spell the header ``Content-type``, error
replies ``Content-Type`` (F11). The ``mimetypes`` table is the running interpreter's, so
the same on both sides of a same-interpreter run (3.11.7 here already says
``text/javascript`` for ``.js`` and knows ``.webp``: the mimetypes changes listed for 3.12
and 3.13, gh-97646 and gh-111741, are in this 3.11.7's table).
"""

from scenarios._http_files_common import STANDARD, File, Link, Row, get, register_rows

NAMES = (
    "page.html",
    "page.htm",
    "notes.txt",
    "UPPER.TXT",
    "Mixed.Txt",
    "archive.gz",
    "archive.tar.gz",
    "archive.GZ",
    "archive.Tar.Gz",
    "archive.tgz",
    "compress.Z",
    "compress.z",
    "data.bz2",
    "data.BZ2",
    "data.tar.bz2",
    "data.xz",
    "data.XZ",
    "noext",
    ".bashrc",
    "trailingdot.",
    "two.dots..txt",
    "script.js",
    "module.mjs",
    "data.json",
    "image.png",
    "image.PNG",
    "image.svg",
    "image.jpg",
    "image.gif",
    "image.ico",
    "image.webp",
    "style.css",
    "doc.pdf",
    "doc.xml",
    "bundle.zip",
    "code.wasm",
    "readme.md",
    "table.csv",
    "file.unknownext",
)

TREE = (
    *STANDARD,
    *(File(f"t/{name}", name.encode() + b"\n") for name in NAMES),
    Link("t/link.html", "notes.txt"),
    Link("t/link_noext", "page.html"),
)


def fetch(*names: str, method: str = "GET") -> list[bytes]:
    """One request per name under /t/."""
    return [get(f"/t/{name}", method=method) for name in names]


ROWS = [
    Row("server_answers", get("/t/notes.txt"), "Sanity: a .txt file is text/plain."),
    Row("html", fetch("page.html", "page.htm"), ".html and .htm: text/html, no charset."),
    Row(
        "text_case",
        fetch("notes.txt", "UPPER.TXT", "Mixed.Txt"),
        "Upper- and mixed-case extensions fall back to the lower-cased lookup: text/plain.",
    ),
    Row(
        "compressed",
        fetch(
            "archive.gz",
            "archive.tar.gz",
            "archive.GZ",
            "archive.Tar.Gz",
            "archive.tgz",
            "compress.Z",
            "compress.z",
        ),
        "extensions_map: .gz is application/gzip whatever precedes it (.tar.gz too), .Z "
        "application/octet-stream; .z and .tgz go to mimetypes.",
    ),
    Row(
        "bz2_xz",
        fetch("data.bz2", "data.BZ2", "data.tar.bz2", "data.xz", "data.XZ"),
        "extensions_map: .bz2 application/x-bzip2, .xz application/x-xz; upper-case .BZ2 "
        "only through the lower-cased lookup (mimetypes does not know it).",
    ),
    Row(
        "no_extension",
        fetch("noext", ".bashrc", "trailingdot.", "two.dots..txt"),
        "No extension, a dotfile (its name is not an extension), a trailing dot: "
        "application/octet-stream; two.dots..txt is .txt.",
    ),
    Row(
        "javascript",
        fetch("script.js", "module.mjs"),
        ".js and .mjs: text/javascript in the running mimetypes table (gh-97646; "
        "application/javascript in older tables).",
    ),
    Row("json", fetch("data.json"), ".json: application/json."),
    Row(
        "images",
        fetch(
            "image.png",
            "image.PNG",
            "image.svg",
            "image.jpg",
            "image.gif",
            "image.ico",
            "image.webp",
        ),
        "Images: png (also upper-case), svg, jpg, gif, ico, webp from the built-in table.",
    ),
    Row(
        "other_types",
        fetch(
            "style.css", "doc.pdf", "doc.xml", "bundle.zip", "code.wasm", "readme.md", "table.csv"
        ),
        "css, pdf, xml, zip, wasm, md, csv: whatever the running mimetypes table says.",
    ),
    Row(
        "unknown",
        fetch("file.unknownext"),
        "An extension no table knows: application/octet-stream.",
    ),
    Row(
        "type_from_path_only",
        [get("/t/notes.txt?x.html"), get("/t/script.js#.html"), get("/t/noext?.png")],
        "The type comes from the translated path: a query or fragment that looks like an "
        "extension changes nothing.",
    ),
    Row(
        "symlink_name",
        fetch("link.html", "link_noext"),
        "A symlink's own name decides the type, not its target's.",
    ),
    Row(
        "header_spelling",
        [
            get("/t/notes.txt"),
            get("/t/missing.txt"),
            get("/t/notes.txt", method="POST"),
            get("/t/"),
        ],
        "Content-type on a file and on a listing, Content-Type on the 404 and 501 error "
        "pages (F11).",
    ),
    Row(
        "head",
        fetch("archive.tar.gz", "image.png", "missing.bin", method="HEAD"),
        "HEAD: the same Content-type as GET; a 404 keeps Content-Type and Content-Length.",
    ),
]

register_rows("types", ROWS, tree=TREE)
