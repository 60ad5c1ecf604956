"""Django's ASGI handler, with each request's middleware and view run in one thread hop.

Django's own ASGI handler runs the middleware chain in async mode. Every classic middleware
(`MiddlewareMixin`: sessions, CSRF, auth, messages, security, ...) then moves to a thread and
back for its `process_request` and again for its `process_response`, and the (sync) view
once more: about twenty hops between the event loop and a thread per request, each a wake-up
of the loop and a hand-over of the GIL. A DRF request that answers 401 without touching the
database took 4-5 ms of CPU that way. Here the chain is loaded in sync mode (as under WSGI)
and run by one `sync_to_async` call per request, in the request's own thread as before
(Django's per-request ThreadSensitiveContext). Reading the body and sending the response
stay on the event loop; none of the site's views is async.
"""

from typing import Any

import django
from asgiref.sync import sync_to_async
from django.core.handlers import base
from django.core.handlers.asgi import ASGIHandler
from django.http import FileResponse, HttpRequest
from django.http.response import HttpResponseBase


class SyncChainASGIHandler(ASGIHandler):
    def __init__(self) -> None:
        base.BaseHandler.__init__(self)
        self.load_middleware(is_async=False)

    async def run_get_response(self, request: HttpRequest) -> HttpResponseBase:
        response: Any = await sync_to_async(self.get_response, thread_sensitive=True)(request)
        response._handler_class = self.__class__
        if isinstance(response, FileResponse):
            response.block_size = self.chunk_size  # the server does the chunking
        return response


def get_http_application() -> SyncChainASGIHandler:
    """Set Django up and return the HTTP application (like `get_asgi_application`)."""
    django.setup(set_prefix=False)
    return SyncChainASGIHandler()
