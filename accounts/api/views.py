from typing import Any

from django.contrib.auth import authenticate
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.authentication import SessionAuthentication
from rest_framework.authtoken.models import Token
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import services
from travelsite import ratelimit
from travelsite.api import StrictCharField, request_user
from travelsite.openapi import RETRY_AFTER, errors
from travelsite.throttling import client_ip
from travelsite.token_auth import ApiTokenAuthentication


class TokenCreateApi(APIView):
    """Exchange a username and password for the user's API token."""

    class TokenInput(serializers.Serializer):
        username = StrictCharField(max_length=150)
        password = StrictCharField(max_length=4096, trim_whitespace=False)

    @extend_schema(
        request=TokenInput,
        responses={
            200: inline_serializer("Token", {"token": serializers.CharField()}),
            **errors(400, 413, 429),
        },
        parameters=[RETRY_AFTER],
        auth=[],
    )
    def post(self, request: Request) -> Response:
        ratelimit.check("sign_in", f"ip:{client_ip(request)}")
        data = self.TokenInput(data=request.data)
        data.is_valid(raise_exception=True)
        user = authenticate(
            request._request,
            username=data.validated_data["username"],
            password=data.validated_data["password"],
        )
        if user is None or not user.is_active:
            raise serializers.ValidationError(
                {"detail": "Unable to sign in with those credentials."}
            )
        token, _ = Token.objects.get_or_create(user=user)
        return Response({"token": token.key})

    @extend_schema(
        request=None,
        responses={204: None, **errors(401, 413, 429)},
        parameters=[RETRY_AFTER],
        description="Revoke the caller's token: REST calls with it get 401 and its sockets close.",
    )
    def delete(self, request: Request) -> Response:
        user = request_user(request)
        services.token_revoke(user=user)
        return Response(status=204)

    def get_authenticators(self) -> list[Any]:
        # Signing in needs no credentials; revoking needs them.
        if self.request is not None and self.request.method == "DELETE":
            return [ApiTokenAuthentication(), SessionAuthentication()]
        return []

    def get_permissions(self) -> list[Any]:
        if self.request is not None and self.request.method == "DELETE":
            return [IsAuthenticated()]
        return [AllowAny()]
