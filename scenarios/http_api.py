"""http/api: the namespace of every public class of ``http.server``, and the module's.

Like ``socketserver/api``: a name an implementation adds to a class can shadow a user's
(``BaseHTTPRequestHandler`` and ``SimpleHTTPRequestHandler`` are subclassed by almost
every program that uses them); see ``scenarios/_api_common.py``.
"""

from __future__ import annotations

from scenarios._api_common import register_family

IDS = register_family("http", "http.server")
