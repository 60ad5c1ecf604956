from django.contrib.auth import authenticate
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.authtoken.models import Token
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from travelsite.api import StrictCharField


class TokenCreateApi(APIView):
    """Exchange a username and password for the user's API token."""

    authentication_classes: list[type] = []
    permission_classes = [AllowAny]

    class TokenInput(serializers.Serializer):
        username = StrictCharField(max_length=150)
        password = StrictCharField(max_length=4096, trim_whitespace=False)

    @extend_schema(
        request=TokenInput,
        responses={200: inline_serializer("Token", {"token": serializers.CharField()})},
        auth=[],
    )
    def post(self, request: Request) -> Response:
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
