"""CGIHTTPRequestHandler subclasses for the ``http/cgi/*`` catalog.

They serve ``www`` under the server process's working directory (its private work
directory, which the scenario fills with scripts under ``www/cgi-bin`` before sending
requests). Written against the stdlib names (``import http.server``), so every target runs
them unchanged. Stdlib-only, Python 3.9-compatible.
"""

import http.server
import json
import os
import subprocess
import sys

from scenarios.handlers.http_files import www


class Cgi(http.server.CGIHTTPRequestHandler):
    """CGIHTTPRequestHandler serving ``./www``, passed as ``directory=``.

    Scenarios choose the fork path or the subprocess path with ``have_fork`` (a handler
    attribute) and may set ``timeout``.
    """

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("directory", www())
        super().__init__(*args, **kwargs)


#: What a child process of the server prints: its whole environment, as JSON.
_PRINT_ENVIRONMENT = "import json, os; print(json.dumps(dict(os.environ)))"


def inherited_environment_changes():
    """Return ``{name: value}`` of what a child started now inherits unlike ``os.environ``.

    The child is started without ``env=``, so it inherits the process's C-level
    environment: a value written there with ``putenv`` but not through ``os.environ``
    (or the other way round) shows here. A name the child lacks maps to None.
    """
    command = [sys.executable, "-c", _PRINT_ENVIRONMENT]
    output = subprocess.run(command, stdout=subprocess.PIPE, check=True, timeout=30).stdout
    inherited = json.loads(output)
    changes = {}
    for name in set(inherited) | set(os.environ):
        if inherited.get(name) != os.environ.get(name):
            changes[name] = inherited.get(name)
    return changes
