"""Reads about users shared by every app: names and avatars as the wire shapes carry them."""

from typing import Any

from django.contrib.auth.models import AbstractBaseUser

from accounts.models import Profile


def profile_for(user: AbstractBaseUser) -> Profile:
    """The user's profile, made on the spot for a user created without one."""
    profile, _ = Profile.objects.get_or_create(user_id=user.pk)
    return profile


def profile_image_of(user: AbstractBaseUser) -> str | None:
    """The avatar URL (None when unset); no query when the profile was prefetched."""
    try:
        profile = user.profile  # type: ignore[attr-defined]
    except Profile.DoesNotExist:
        return None
    return (profile.profile_image or None) if profile is not None else None


def user_summary(user: AbstractBaseUser) -> dict[str, Any]:
    """`{id, firstName, lastName}`: how events name a user."""
    return summary_of(
        user_id=user.pk,
        first_name=getattr(user, "first_name", ""),
        last_name=getattr(user, "last_name", ""),
    )


def user_card(user: AbstractBaseUser) -> dict[str, Any]:
    """`{id, firstName, lastName, profileImage}`: the user inside a Message."""
    return {**user_summary(user), "profileImage": profile_image_of(user)}


def summary_of(*, user_id: int, first_name: str, last_name: str) -> dict[str, Any]:
    """`user_summary` from the column values."""
    return {"id": user_id, "firstName": first_name, "lastName": last_name}


def card_of(
    *, user_id: int, first_name: str, last_name: str, profile_image: str | None
) -> dict[str, Any]:
    """`user_card` from the column values (history pages read rows, not users)."""
    summary = summary_of(user_id=user_id, first_name=first_name, last_name=last_name)
    return {**summary, "profileImage": profile_image or None}


def display_name(user: AbstractBaseUser) -> str:
    full = f"{getattr(user, 'first_name', '')} {getattr(user, 'last_name', '')}".strip()
    return full or user.get_username()
