"""Sign-in and sign-out pages: Django's auth views, with a per-IP limit and socket clean-up."""

import math
from typing import Any

from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse

from accounts import services
from travelsite import ratelimit
from travelsite.throttling import client_ip


class LoginView(auth_views.LoginView):
    """Django's login form; too many attempts from one address answer 429."""

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            ratelimit.check("sign_in", f"ip:{client_ip(request)}")
        except ratelimit.RateLimited as limited:
            form = self.get_form()
            form.add_error(None, "Too many sign-in attempts. Please wait a moment and try again.")
            response = self.render_to_response(self.get_context_data(form=form), status=429)
            response["Retry-After"] = str(math.ceil(limited.retry_after))
            return response
        return super().post(request, *args, **kwargs)


class LogoutView(auth_views.LogoutView):
    """Django's logout; the sockets this browser session signed in are closed too."""

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        user, session_key = request.user, request.session.session_key
        response = super().post(request, *args, **kwargs)
        if user.is_authenticated and session_key:
            services.session_sockets_close(user_id=user.pk, session_key=session_key)
        return response
