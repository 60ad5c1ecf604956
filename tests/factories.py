import datetime

import factory
from django.contrib.auth.models import User
from django.utils import timezone

from travel.models import Booking, Departure, Tour


class UserFactory(factory.django.DjangoModelFactory[User]):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    password = factory.django.Password("pass-word-123")


class StaffFactory(UserFactory):
    is_staff = True


class TourFactory(factory.django.DjangoModelFactory[Tour]):
    class Meta:
        model = Tour

    name = factory.Sequence(lambda n: f"Tour {n}")
    destination = "Lisbon"
    description = "A walk through the old town."


class DepartureFactory(factory.django.DjangoModelFactory[Departure]):
    class Meta:
        model = Departure

    tour = factory.SubFactory(TourFactory)
    start_date = factory.LazyFunction(lambda: timezone.localdate() + datetime.timedelta(days=30))
    end_date = factory.LazyAttribute(lambda d: d.start_date + datetime.timedelta(days=5))
    capacity = 10


class BookingFactory(factory.django.DjangoModelFactory[Booking]):
    class Meta:
        model = Booking

    user = factory.SubFactory(UserFactory)
    departure = factory.SubFactory(DepartureFactory)
    travellers = 1
