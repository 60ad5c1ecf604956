"""ASGI entry point: HTTP through Django, `/ws/` through the one realtime consumer.

Serve with `daphne travelsite.asgi:application`.
"""

import os

from travelsite.http import get_http_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "travelsite.settings")
django_asgi_app = get_http_application()  # set up Django before importing consumers

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from chat.routing import websocket_urlpatterns  # noqa: E402
from travelsite import drivers  # noqa: E402
from travelsite.autobahn_logging import install_lazy_debug_args  # noqa: E402
from travelsite.connection_cycles import install_cycle_breakers  # noqa: E402
from travelsite.gc_tuning import freeze_startup_objects  # noqa: E402
from travelsite.transport import install_frame_writers, install_slow_consumer_guard  # noqa: E402
from travelsite.ws_auth import TokenHeaderAuthMiddleware, origin_validated  # noqa: E402

install_slow_consumer_guard()
drivers.cache_batch_statements()
drivers.load_timestamps_in_c()
install_frame_writers()
install_cycle_breakers()
install_lazy_debug_args()

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": origin_validated(
            AuthMiddlewareStack(TokenHeaderAuthMiddleware(URLRouter(websocket_urlpatterns)))
        ),
    }
)
freeze_startup_objects()  # last: everything above lives as long as the process
