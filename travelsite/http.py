"""Django's ASGI handler, with each request handled in one thread hop.

Django's own ASGI handler runs the middleware chain in async mode. Every classic middleware
(`MiddlewareMixin`: sessions, CSRF, auth, messages, security, ...) then moves to a thread and
back for its `process_request` and again for its `process_response`, and the (sync) view
once more: about twenty hops between the event loop and a thread per request, each a wake-up
of the loop and a hand-over of the GIL. A DRF request that answers 401 without touching the
database took 4-5 ms of CPU that way, against 0.7 ms in-process.

Here the chain is loaded in sync mode (as under WSGI), and one call on the request's own
thread (Django's per-request ThreadSensitiveContext, as before) sends `request_started`, runs
middleware and view, and, for an ordinary response, closes it (`request_finished`: the
database connection goes back to the pool from the thread that used it). Reading the body and
writing the response stay on the event loop. None of the site's views is async.

That thread is leased, not made: Django's handler enters a fresh `ThreadSensitiveContext` per
request, which starts a thread for it and joins it afterwards (a tenth of a history page's
time through daphne). Here each request borrows an idle one-thread executor for the whole
request (view, and the close of a streamed response on the same thread) and hands it back.
"""

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import django
from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers import base
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.http import FileResponse
from django.http.response import HttpResponseBase
from django.urls import set_script_prefix

#: Idle request threads kept for the next requests; more are made while more requests run at
#: once, and those beyond this many are let go when their request ends.
IDLE_REQUEST_THREADS = 16


class SyncChainASGIHandler(ASGIHandler):
    def __init__(self) -> None:
        base.BaseHandler.__init__(self)
        self.load_middleware(is_async=False)
        self._idle_threads: list[ThreadPoolExecutor] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        # Only the event loop's thread touches the idle list: no lock needed.
        if self._idle_threads:
            thread = self._idle_threads.pop()
        else:
            thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="http-request")
        try:
            async with ThreadSensitiveContext(executor=thread):
                await self.handle(scope, receive, send)
        finally:
            if len(self._idle_threads) < IDLE_REQUEST_THREADS:
                self._idle_threads.append(thread)
            else:
                thread.shutdown(wait=False)

    async def handle(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        set_script_prefix(get_script_prefix(scope))
        try:
            response = await sync_to_async(self._respond, thread_sensitive=True)(scope, body_file)
            try:
                await self.send_response(response, send)
            finally:
                if response.streaming:  # closed once its content has been sent
                    await sync_to_async(response.close, thread_sensitive=True)()
        finally:
            body_file.close()

    def _respond(self, scope: dict[str, Any], body_file: Any) -> HttpResponseBase:
        signals.request_started.send(sender=self.__class__, scope=scope)
        request, error_response = self.create_request(scope, body_file)
        if request is None:  # e.g. a bad Host header: answered as Django answers it
            assert error_response is not None
            response = error_response
        else:
            response = self.get_response(request)
            response._handler_class = self.__class__  # type: ignore[attr-defined]
            if isinstance(response, FileResponse):
                response.block_size = self.chunk_size  # the server does the chunking
        if not response.streaming:
            response.close()  # its content is built; `request_finished` fires here
        return response


def get_http_application() -> SyncChainASGIHandler:
    """Set Django up and return the HTTP application (like `get_asgi_application`)."""
    django.setup(set_prefix=False)
    return SyncChainASGIHandler()
