"""Sockets' message sends, stored by the event loop itself on PostgreSQL (travelsite.loop_db).

`messages_send` returns once the messages are committed and announced; `durable()` once they
are on disk, which is what an `ack` waits for (chat.ws).

The same checks, statements and announcements as `services.messages_send` (which REST, scripts
and SQLite use), run without the trip to Channels' database thread and back: the rate limits
and the store's round trips are awaited on the loop, and what the store announces is queued to
the channel layer from there. What needs the ORM goes to the database thread as before: the
follow-ups of messages in rooms other than public ones (the staff inbox, notifications), a
sender's profile not loaded yet, and the rare batches that repeat a stored clientId (run again
by `services.messages_send`, which looks those up).
"""

import logging
from collections.abc import Sequence

from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError

from accounts.selectors import profile_image_of
from chat import services
from chat.services import SendRequest, SendResult
from travelsite import loop_db, ratelimit

logger = logging.getLogger(__name__)

#: Commits that do not wait for the disk when `CHAT_BROADCAST_BEFORE_FLUSH` (the default):
#: a message is announced once committed, and acknowledged once `durable()` (chat.ws).
_connections = loop_db.LoopConnections(wait_for_disk=not settings.CHAT_BROADCAST_BEFORE_FLUSH)


async def messages_send(requests: Sequence[SendRequest]) -> list[SendResult]:
    """`services.messages_send`, awaited on the event loop: the same results, in order."""
    if not loop_db.available():
        return await database_sync_to_async(services.messages_send)(requests)
    batch = services.SendBatch.checked(requests)
    if unchecked := batch.unchecked():
        verdicts = await ratelimit.acheck_each("messages", batch.user_ids(unchecked))
        batch.rate_limited(unchecked, verdicts)
    if accepted := batch.accepted():
        await _profiles_loaded([batch.requests[index].user for index in accepted])
        try:
            stored = await _connections.run_steps(lambda: services.store_steps(batch, look_up=None))
        except IntegrityError:
            # A clientId stored before (a retry after a lost ack): stored by the thread's path,
            # which looks those up; the rate limits taken here are not taken again.
            return await database_sync_to_async(services.messages_send)(batch.requests_checked())
        batch.record(stored.outcome)
        try:
            stored.announcements.send()
        except Exception:  # stored and committed: answered as stored, as on_commit(robust=True)
            logger.exception("could not announce %d stored messages", len(stored.outcome))
        if stored.announcements.follow_ups:
            await database_sync_to_async(stored.announcements.follow_up)()
    if batch.repeats():
        await database_sync_to_async(batch.answer_repeats)(services.messages_by_client_id)
    return batch.answers()


async def durable() -> None:
    """Return once every message this loop stored before the call is on disk (at once when
    stores wait for the disk on commit, or run on Django's connection); raises Django's
    `OperationalError` if that cannot be known: the sender should send again (same clientId)."""
    if loop_db.available():
        await _connections.durable()


async def close_connections() -> None:
    """Close this loop's idle connections (a loop that ends, e.g. a test's)."""
    await _connections.close_idle()


async def _profiles_loaded(users: Sequence[User]) -> None:
    """Load the senders' profiles that are not yet (a message's shape shows the avatar)."""
    missing = [user for user in users if not User.profile.related.is_cached(user)]
    if missing:
        await database_sync_to_async(lambda: [profile_image_of(user) for user in missing])()
