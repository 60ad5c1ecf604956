from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from travel import selectors, services
from travel.api.serializers import BookingOutput, TourOutput
from travelsite.api import request_user
from travelsite.openapi import RETRY_AFTER, WRITE_ERRORS, ApiSchema, errors


class TourListApi(APIView):
    @extend_schema(
        responses={
            200: inline_serializer("TourList", {"results": TourOutput(many=True)}),
            **errors(401),
        },
    )
    def get(self, request: Request) -> Response:
        return Response({"results": TourOutput(selectors.tour_list(), many=True).data})


class BookingListCreateApi(APIView):
    permission_classes = [IsAuthenticated]

    class BookingCreateInput(serializers.Serializer):
        departureId = serializers.IntegerField(min_value=1, max_value=2**63 - 1)
        travellers = serializers.IntegerField(
            required=False, default=1, min_value=1, max_value=services.MAX_TRAVELLERS_PER_BOOKING
        )

    @extend_schema(
        responses={
            200: inline_serializer("BookingList", {"results": BookingOutput(many=True)}),
            **errors(401),
        },
    )
    def get(self, request: Request) -> Response:
        bookings = selectors.booking_list(user=request_user(request))
        return Response({"results": BookingOutput(bookings, many=True).data})

    @extend_schema(
        request=BookingCreateInput,
        responses={201: BookingOutput, **errors(*WRITE_ERRORS, 404)},
        parameters=[RETRY_AFTER],
    )
    def post(self, request: Request) -> Response:
        data = self.BookingCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            booking = services.booking_create(
                user=request_user(request),
                departure_id=data.validated_data["departureId"],
                travellers=data.validated_data["travellers"],
            )
        except services.NotFound as error:
            raise NotFound(str(error)) from None
        except services.BookingError as error:
            raise ValidationError({"detail": str(error)}) from None
        return Response(BookingOutput(booking).data, status=status.HTTP_201_CREATED)


class BookingDetailApi(APIView):
    permission_classes = [IsAuthenticated]
    schema = ApiSchema()

    class BookingStatusInput(serializers.Serializer):
        status = serializers.ChoiceField(choices=services.Booking.Status.choices)

    @extend_schema(
        request=BookingStatusInput,
        responses={200: BookingOutput, **errors(*WRITE_ERRORS, 403, 404)},
        parameters=[RETRY_AFTER],
    )
    def patch(self, request: Request, booking_id: int) -> Response:
        data = self.BookingStatusInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            booking = services.booking_set_status(
                actor=request_user(request),
                booking_id=booking_id,
                status=data.validated_data["status"],
            )
        except services.NotFound as error:
            raise NotFound(str(error)) from None
        except services.Forbidden as error:
            raise PermissionDenied(str(error)) from None
        return Response(BookingOutput(booking).data)
