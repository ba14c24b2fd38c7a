"""socketserver/api: the namespace of every public class of ``socketserver``, and the module's.

A drop-in replacement must not add names to the classes: a private method that the stdlib
does not have (``BaseServer._dispatch``) shadows the same name in a user's class or in a
sibling base, as it once broke ``xmlrpc.server.SimpleXMLRPCServer``. These scenarios
compare the classes name by name (see ``scenarios/_api_common.py``). No ``Known`` of the
reference's: its API follows the running interpreter's (``allow_reuse_port`` from 3.11,
the Forking Unix servers from 3.12).
"""

from __future__ import annotations

from scenarios._api_common import register_family

IDS = register_family("socketserver", "socketserver")
