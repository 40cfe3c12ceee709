"""Reaching the sandbox in-process: an httpx transport that fails as a socket would.

Over loopback the sandbox is served by :class:`syncd.service.serving.LoopbackServer`.
"""

from __future__ import annotations

import httpx

from syncd.sandbox.faults import DropConnection


class SandboxTransport(httpx.WSGITransport):
    """Calls the sandbox's WSGI app in-process, with a socket's failure for a dropped connection."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        # A streamed body has no Content-Length; a WSGI app reads such a body as empty, so give
        # the app the length a server would have read off the wire (the caller's request stays as sent).
        request.read()
        if "Content-Length" not in request.headers:
            headers = [(k, v) for k, v in request.headers.multi_items() if k.lower() != "transfer-encoding"]
            request = httpx.Request(request.method, request.url, headers=headers, content=request.content)
        try:
            response = super().handle_request(request)
            response.read()
        except DropConnection as exc:
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.", request=request) from exc
        return response
