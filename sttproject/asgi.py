"""ASGI entry point: HTTP through Django, WebSockets through Channels."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sttproject.settings")
# Django must be set up before anything imports models.
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from accounts.middleware import ApiKeyMiddleware, BrowserOriginValidator  # noqa: E402
from transcription.ops import startup  # noqa: E402
from transcription.routing import UnknownPathRefusal, websocket_urlpatterns  # noqa: E402

# A path with no endpoint is refused first (HTTP 404). BrowserOriginValidator replaces
# AllowedHostsOriginValidator, which would refuse API clients that send no Origin. ApiKeyMiddleware
# sits inside AuthMiddlewareStack so that a presented key wins over a session cookie.
application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": UnknownPathRefusal(
            BrowserOriginValidator(AuthMiddlewareStack(ApiKeyMiddleware(URLRouter(websocket_urlpatterns))))
        ),
    }
)

# Under Daphne: load the models as soon as the server runs, and finalize open streams on SIGTERM.
startup.when_serving()
