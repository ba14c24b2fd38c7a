"""Error replies: ``send_error`` codes with and without bodies, HEAD, escaping, custom
templates, ``Connection: close`` on every error (H16, H17, H30), and the replies to
malformed request lines (H5).

The ``SendError`` handler calls ``send_error(code, message, explain)`` with the values in
the path, ``/<code>?message=...&explain=...`` (percent-decoded as UTF-8; an absent one is
passed as None).
"""

from __future__ import annotations

from scenarios._http_protocol_common import STATUS_LINE_FIX, Row, register_rows, spec

FAMILY = "errors"

SEND_ERROR = spec("SendError")

#: A template that shows each substitution between bars, and a non-HTML content type.
CUSTOM_TEMPLATE = {
    "error_message_format": "custom|%(code)d|%(message)s|%(explain)s|\n",
    "error_content_type": "text/plain; charset=ascii",
}


def get(target: str, version: str = "1.0", method: str = "GET", extra: str = "") -> bytes:
    """A request for ``target`` (an error code with its query)."""
    return f"{method} {target} HTTP/{version}\r\n{extra}\r\n".encode("latin-1")


def code_rows() -> list[Row]:
    """``send_error(code)`` for codes whose replies differ in shape."""
    table = [
        (404, "a standard code: phrase and description from HTTPStatus, HTML body"),
        (500, "500: Internal Server Error page"),
        (204, "204 No Content: headers only, no Content-Type or Content-Length (H16)"),
        (304, "304 Not Modified: headers only (H16)"),
        (100, "a 1xx code: headers only (H16)"),
        (199, "an unknown 1xx code: phrase ???, headers only"),
        (418, "418 I'm a teapot: an apostrophe in the phrase, escaped in the page"),
        (999, "an unknown code: phrase and explanation ??? (H16)"),
    ]
    return [
        Row(f"code_{code}", get(f"/{code}"), f"send_error({code}): {what}.", server=SEND_ERROR)
        for code, what in table
    ]


ROWS = [
    Row("sanity", get("/404"), "The server answers with a 404 error page.", server=SEND_ERROR),
    *code_rows(),
    Row(
        "message_custom",
        get("/403?message=Go%20away"),
        "A custom message replaces the phrase in the status line and the page.",
        server=SEND_ERROR,
    ),
    Row(
        "explain_custom",
        get("/403?explain=Because%20I%20said%20so"),
        "A custom explain replaces the description in the page only.",
        server=SEND_ERROR,
    ),
    Row(
        "escaping",
        get(
            "/400?message=%3Cb%3E%26%22%27&explain=%3Cscript%3Ealert(1)%3C%2Fscript%3E%20%26amp%3B"
        ),
        "Message and explain are HTML-escaped in the page (quote=False), raw in the "
        "status line (H16).",
        server=SEND_ERROR,
    ),
    Row(
        "explain_quotes",
        get("/400?explain=say%20%22no%22%20and%20%27yes%27"),
        "Quotes in explain stay as they are in the page (html.escape with quote=False).",
        server=SEND_ERROR,
    ),
    Row(
        "message_latin1",
        get("/400?message=caf%C3%A9%20%C2%B5"),
        "A Latin-1 message: sent as Latin-1 in the status line, UTF-8 in the page.",
        server=SEND_ERROR,
    ),
    Row(
        "message_non_latin1",
        get("/400?message=check%20%E2%9C%93"),
        "A message outside Latin-1 cannot be encoded in the status line: UnicodeEncodeError "
        "reaches handle_error and the client gets nothing (H16).",
        server=SEND_ERROR,
    ),
    Row(
        "message_crlf",
        get("/400?message=a%0D%0AX-Injected:%201"),
        "CR LF in the message go into the status line unchecked (H26).",
        server=SEND_ERROR,
    ),
    Row(
        "head_404",
        get("/404", method="HEAD"),
        "An error reply to HEAD has the same headers and no body (H16).",
        server=SEND_ERROR,
    ),
    Row(
        "http11_keepalive",
        get("/404", "1.1") + get("/200", "1.1"),
        "An HTTP/1.1 error reply says Connection: close and the connection closes: the "
        "pipelined second request is not answered (H30).",
        server=spec("SendError", protocol="HTTP/1.1"),
    ),
    Row(
        "http09_explicit",
        get("/404", "0.9"),
        "An error reply to an explicit HTTP/0.9 request is the page alone (H6).",
        server=SEND_ERROR,
    ),
    Row(
        "custom_template",
        get("/404?message=M%26M&explain=%3Cx%3E"),
        "error_message_format and error_content_type overridden: the template gets the "
        "escaped values.",
        server=spec("SendError", **CUSTOM_TEMPLATE),
    ),
    Row(
        "unsupported_method",
        b"BREW /pot HTTP/1.0\r\n\r\n",
        "A method without do_<METHOD>: 501 Unsupported method ('BREW') (H10).",
    ),
    Row(
        "unsupported_method_keepalive",
        b"BREW /pot HTTP/1.1\r\n\r\nGET /next HTTP/1.1\r\n\r\n",
        "A 501 on an HTTP/1.1 connection closes it: the next request is not answered (H30).",
        server=spec(protocol="HTTP/1.1"),
    ),
    # -- malformed request lines (H5)
    Row(
        "malformed_fubar",
        b"GET / FUBAR\r\n\r\n",
        "GET / FUBAR: 400 Bad request version ('FUBAR'); bare page before gh-54930 (H5).",
        known=(STATUS_LINE_FIX,),
    ),
    Row(
        "malformed_fubar_head",
        b"HEAD / FUBAR\r\n\r\n",
        "HEAD / FUBAR: the command is not known yet when the 400 is sent, so a body goes out.",
        known=(STATUS_LINE_FIX,),
    ),
    Row(
        "malformed_http20_server11",
        b"GET / HTTP/2.0\r\n\r\n",
        "HTTP/2.0 to an HTTP/1.1 handler: 505, and the connection closes (H5, H30).",
        server=spec(protocol="HTTP/1.1"),
        known=(STATUS_LINE_FIX,),
    ),
    Row(
        "malformed_five_words",
        b"GET / HTTP/1.0 extra words\r\n\r\n",
        "Five words: the last is no version, 400 Bad request version ('words') (H5).",
        known=(STATUS_LINE_FIX,),
    ),
]

register_rows(FAMILY, ROWS)
