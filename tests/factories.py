"""factory_boy factories shared by the whole suite."""

import factory
from django.contrib.auth import get_user_model

from assignments.models import ExecutionBlock, Investigator, Mous, Person, Project


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.org")
    password = factory.django.Password("pw-for-tests-123")


class PersonFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Person

    user = factory.SubFactory(UserFactory)
    role = Person.Role.REDUCER
    initials = factory.Sequence(lambda n: "R" + chr(ord("A") + n % 26) + chr(ord("A") + (n // 26) % 26))


class DrmFactory(PersonFactory):
    role = Person.Role.DRM


class ProjectFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Project
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"2019.1.{n:05d}.S")
    title = factory.Faker("sentence", nb_words=5)
    cycle = 7


class InvestigatorFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Investigator

    project = factory.SubFactory(ProjectFactory)
    name = factory.Faker("name")
    email = factory.Sequence(lambda n: f"investigator{n}@example.org")
    role = Investigator.Role.PI


class MousFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Mous

    project = factory.SubFactory(ProjectFactory)
    uid = factory.Sequence(lambda n: f"uid://A001/X{0x100 + n:x}/X{0x10 + n:x}")
    sb_name = factory.Sequence(lambda n: f"Source{n}_a_06_TE")
    array = Mous.Array.TWELVE_M_EXTENDED
    band = 6
    representative_frequency_ghz = 231.0
    requested_rms_mjy = 0.5
    rms_bandwidth_mhz = 1875.0
    resolution_min_arcsec = 0.3
    resolution_max_arcsec = 0.6


class ExecutionBlockFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ExecutionBlock

    mous = factory.SubFactory(MousFactory)
    uid = factory.Sequence(lambda n: f"uid://A002/X{0xA00 + n:x}/X{0x1 + n:x}")
