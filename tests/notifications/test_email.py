"""The email fallback: unread notifications of offline users who want email, emailed once."""

import datetime
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.core.mail.backends.locmem import EmailBackend as LocmemBackend
from django.db import transaction
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from notifications import services, tasks
from notifications.models import Notification, NotificationPreference, NotificationType
from presence.models import UserPresence
from tests.conftest import ROOT, live_database_url, wait_for_other_connections_to_settle
from tests.factories import UserFactory
from tests.notifications.conftest import make_notification

DATABASE_BACKEND = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
TASK_PATH = "notifications.tasks.email_unread_notifications"


@pytest.fixture(autouse=True)
def _mail_settings(settings: Any) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.SITE_URL = "https://wanderly.example"
    settings.NOTIFICATION_EMAIL_DELAY_SECONDS = 600
    settings.TASKS = DATABASE_BACKEND


def wants_email(
    type: str = NotificationType.BOOKING, *, email: str = "ana@example.com", **fields: Any
) -> User:
    user = UserFactory.create(email=email, first_name="Ana", **fields)
    NotificationPreference.objects.create(user=user, type=type, email=True)
    return user


def run_job(*notifications: Notification) -> int:
    """What the worker does when the job comes due."""
    return tasks.email_unread_notifications.call([n.pk for n in notifications])


def booking(user: User, **fields: Any) -> Notification:
    values = {
        "type": NotificationType.BOOKING,
        "title": "Booking confirmed",
        "message": "Your booking #7 is confirmed.",
        "link": "/bookings/",
        **fields,
    }
    return make_notification(user.pk, **values)


# --- The job ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_unread_notification_of_an_offline_user_is_emailed_once() -> None:
    # given an offline user (no presence row) who wants booking emails
    user = wants_email()
    notification = booking(user)
    # when the job runs twice (a retry, or a second worker)
    assert run_job(notification) == 1
    assert run_job(notification) == 0
    # then exactly one email went out, and the notification remembers it
    assert len(mail.outbox) == 1
    notification.refresh_from_db()
    assert notification.emailed_at is not None
    assert notification.is_read is False  # emailing does not mark it read


@pytest.mark.django_db
def test_the_email_has_subject_text_html_and_an_absolute_link() -> None:
    user = wants_email()
    run_job(booking(user, message="Line one\nLine <two> & more"))
    (email,) = mail.outbox
    assert email.subject == "[Wanderly] Booking confirmed"
    assert email.to == ["ana@example.com"]
    assert email.from_email  # DEFAULT_FROM_EMAIL
    assert "Hello Ana," in email.body
    assert "Line one\nLine <two> & more" in email.body  # plain text is not HTML-escaped
    assert "https://wanderly.example/bookings/" in email.body
    assert isinstance(email, mail.EmailMultiAlternatives)
    ((html, mimetype),) = email.alternatives
    assert mimetype == "text/html"
    assert isinstance(html, str)
    assert 'href="https://wanderly.example/bookings/"' in html
    assert "Line one<br>Line &lt;two&gt; &amp; more" in html


@pytest.mark.parametrize(
    ("link", "url"),
    [
        ("", "https://wanderly.example/"),
        ("/tours/3/", "https://wanderly.example/tours/3/"),
        ("https://partner.example/x", "https://partner.example/x"),
        ("//evil.example/x", "https://wanderly.example/"),
        ("javascript:alert(1)", "https://wanderly.example/"),
    ],
)
def test_links_become_absolute_http_urls(settings: Any, link: str, url: str) -> None:
    settings.SITE_URL = "https://wanderly.example"
    assert tasks.absolute_url(link) == url


@pytest.mark.django_db
def test_a_multi_line_title_makes_a_one_line_subject() -> None:
    user = wants_email()
    run_job(booking(user, title="Booking\nconfirmed"))
    assert mail.outbox[0].subject == "[Wanderly] Booking confirmed"


@pytest.mark.django_db
def test_a_read_notification_is_not_emailed() -> None:
    user = wants_email()
    notification = booking(user)
    services.notifications_mark_read(user=user, ids=[notification.pk])
    assert run_job(notification) == 0
    assert mail.outbox == []
    notification.refresh_from_db()
    assert notification.emailed_at is None


@pytest.mark.django_db
def test_an_online_user_is_not_emailed() -> None:
    user = wants_email()
    UserPresence.objects.create(user=user, is_online=True)
    assert run_job(booking(user)) == 0
    assert mail.outbox == []


@pytest.mark.django_db
def test_a_user_who_went_offline_is_emailed() -> None:
    user = wants_email()
    UserPresence.objects.create(user=user, is_online=False, last_seen_at=timezone.now())
    assert run_job(booking(user)) == 1


@pytest.mark.django_db
def test_no_email_without_the_email_preference() -> None:
    # no preference row: email is opt-in (GET /preferences shows email false)
    silent = UserFactory.create(email="silent@example.com")
    # email turned on for another type only
    other_type = wants_email(NotificationType.PROMOTION, email="promo@example.com")
    # email turned on, then off again
    turned_off = wants_email(email="off@example.com")
    NotificationPreference.objects.filter(user=turned_off).update(email=False)
    assert run_job(booking(silent), booking(other_type), booking(turned_off)) == 0
    assert mail.outbox == []


@pytest.mark.django_db
def test_no_email_for_a_user_without_an_address_or_inactive() -> None:
    no_address = wants_email(email="")
    inactive = wants_email(email="gone@example.com", is_active=False)
    assert run_job(booking(no_address), booking(inactive)) == 0
    assert mail.outbox == []


@pytest.mark.django_db
def test_critical_notifications_still_follow_the_email_preference() -> None:
    # PAYMENT cannot be turned off in-app, but email is still the user's choice
    wants = wants_email(NotificationType.PAYMENT, email="pay@example.com")
    silent = UserFactory.create(email="silent@example.com")
    services.notification_create(
        user_ids=[wants.pk, silent.pk], type=NotificationType.PAYMENT, title="Paid", message="m"
    )
    assert run_job(*Notification.objects.all()) == 1
    assert mail.outbox[0].to == ["pay@example.com"]


@pytest.mark.django_db
def test_a_failed_send_is_released_and_the_job_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    user = wants_email()
    notification = booking(user)

    def broken(self: Any, messages: Any) -> int:
        raise OSError("SMTP down")

    monkeypatch.setattr(LocmemBackend, "send_messages", broken)
    with pytest.raises(tasks.NotificationEmailError):
        run_job(notification)
    notification.refresh_from_db()
    assert notification.emailed_at is None  # a later run may still send it
    monkeypatch.undo()
    assert run_job(notification) == 1


@pytest.mark.django_db
def test_one_query_finds_the_candidates_of_a_batch(django_assert_num_queries: Any) -> None:
    users = [wants_email(email=f"u{i}@example.com") for i in range(5)]
    notifications = [booking(u) for u in users]
    # the candidates, then per email: the claim
    with django_assert_num_queries(1 + len(users)):
        assert run_job(*notifications) == len(users)


# --- Scheduling ---------------------------------------------------------------------------------


def create(user_ids: list[int], type: str = NotificationType.BOOKING, **fields: Any) -> int:
    return services.notification_create(
        user_ids=user_ids, type=type, title="Booking confirmed", message="m", **fields
    )


@pytest.mark.django_db
def test_creating_enqueues_one_delayed_job_after_commit(
    django_capture_on_commit_callbacks: Any,
) -> None:
    # given two users who want booking emails and one who does not
    ana, bob = wants_email(email="ana@example.com"), wants_email(email="bob@example.com")
    carl = UserFactory.create(email="carl@example.com")
    # when a booking notification is created for all three
    with django_capture_on_commit_callbacks(execute=True):
        before = timezone.now()
        assert create([ana.pk, bob.pk, carl.pk]) == 3
        assert not DBTaskResult.objects.exists()  # nothing before the commit
    # then one job carries the two notifications, due after the delay
    (job,) = DBTaskResult.objects.all()
    wanted = Notification.objects.filter(user__in=[ana, bob]).order_by("pk")
    assert job.task_path == TASK_PATH
    assert job.args_kwargs == {"args": [[n.pk for n in wanted]], "kwargs": {}}
    delay = datetime.timedelta(seconds=600)
    assert before + delay <= job.run_after <= timezone.now() + delay
    assert job.status == "READY"


@pytest.mark.django_db
def test_nothing_is_enqueued_when_nobody_wants_email(
    django_capture_on_commit_callbacks: Any,
) -> None:
    no_pref = UserFactory.create(email="a@example.com")
    no_address = wants_email(email="")
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        create([no_pref.pk, no_address.pk])
    assert not DBTaskResult.objects.exists()
    assert len(callbacks) == 1  # only the live event


@pytest.mark.django_db
def test_nothing_is_enqueued_when_the_transaction_rolls_back(
    django_capture_on_commit_callbacks: Any,
) -> None:
    user = wants_email()

    def create_then_fail() -> None:
        with transaction.atomic():
            create([user.pk])
            raise RuntimeError("rolled back")

    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError):
        create_then_fail()
    assert not DBTaskResult.objects.exists()


@pytest.mark.django_db
def test_the_preference_check_is_one_query(django_assert_num_queries: Any) -> None:
    users = [wants_email(email=f"u{i}@example.com") for i in range(20)]
    notifications = [booking(u) for u in users]
    with django_assert_num_queries(1):
        assert (
            tasks.notification_emails_schedule(
                notifications=notifications, type=NotificationType.BOOKING
            )
            == 20
        )


@pytest.mark.django_db
def test_a_broadcast_enqueues_one_job_per_batch(
    monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any
) -> None:
    monkeypatch.setattr(services, "BATCH_SIZE", 2)
    for i in range(5):
        wants_email(NotificationType.SYSTEM, email=f"u{i}@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        assert (
            services.notification_broadcast_all(
                type=NotificationType.SYSTEM, title="Maintenance", message="Tonight"
            )
            == 5
        )
    jobs = DBTaskResult.objects.all()
    assert sorted(len(job.args_kwargs["args"][0]) for job in jobs) == [1, 2, 2]


@pytest.mark.django_db
def test_with_the_immediate_backend_the_email_leaves_at_commit(
    settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
    user = wants_email()
    with django_capture_on_commit_callbacks(execute=True):
        create([user.pk])
        assert mail.outbox == []
    assert len(mail.outbox) == 1


# --- The real worker ----------------------------------------------------------------------------


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_the_db_worker_emails_a_due_notification_once(settings: Any, tmp_path: Path) -> None:
    # given a notification created with a one-second delay for an offline user who wants email
    settings.NOTIFICATION_EMAIL_DELAY_SECONDS = 1
    user = wants_email()
    created_at = timezone.now()
    create([user.pk])
    (job,) = DBTaskResult.objects.all()
    # and the same job enqueued a second time (as if scheduled twice)
    tasks.email_unread_notifications.using(run_after=job.run_after).enqueue(
        job.args_kwargs["args"][0]
    )
    outbox = tmp_path / "outbox"
    outbox.mkdir()
    env = {
        **os.environ,
        "DATABASE_URL": live_database_url(),
        "TASKS_BACKEND": "database",
        "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
        "EMAIL_FILE_PATH": str(outbox),
        "DEBUG": "0",
        "PYTHONUNBUFFERED": "1",
    }
    log_path = tmp_path / "worker.log"
    # when the worker runs (the command `make worker` starts)
    worker = subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "db_worker",
            "--interval",
            "0.2",
            "--no-startup-delay",
            "--no-reload",
        ],
        cwd=ROOT,
        env=env,
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if DBTaskResult.objects.filter(status__in=["READY", "RUNNING"]).count() == 0:
                break
            assert worker.poll() is None, log_path.read_text()
            time.sleep(0.2)
    finally:
        worker.terminate()
        worker.wait(timeout=10)
        wait_for_other_connections_to_settle()
    # then both jobs ran, not before they were due, and exactly one email was written
    results = list(DBTaskResult.objects.order_by("finished_at"))
    assert [r.status for r in results] == ["SUCCESSFUL", "SUCCESSFUL"], log_path.read_text()
    assert sorted(r.return_value for r in results) == [0, 1]
    assert all(r.started_at is not None and r.started_at >= r.run_after for r in results)
    assert results[0].run_after >= created_at + datetime.timedelta(seconds=1)
    (email_file,) = outbox.iterdir()
    content = email_file.read_text()
    assert content.count("Subject: [Wanderly] Booking confirmed") == 1
    assert "To: ana@example.com" in content
