"""HTTP pieces of the reference implementation.

Only ``implementation.http.server`` lives here: a drop-in for the stdlib ``http.server``
built on ``implementation.socketserver``. The stdlib ``http`` package (``HTTPStatus``,
``http.client``) is used as is; it is not part of what the project re-implements.
"""
