"""Make the benchmark's users, tokens, rooms and history (idempotent; reuses what exists).

Runs with the Django ORM against the benchmark database only (DATABASE_URL must name
`travelsite_bench`), and prints one JSON object on stdout that bench/run.py reads:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/travelsite_bench \
        .venv/bin/python bench/setup_data.py --history 1000000

- `bench_sub_<i>` subscribers (participants of the fan-out rooms), `bench_snd_<i>` senders,
  `bench_idle_<i>` (in no room, so their sockets cause no presence broadcasts), `bench_hist`.
- One DRF token each (deterministic keys, so reruns agree), and a profile each.
- Public rooms `bench-100` (subscribers 0-99), `bench-500` (0-499), `bench-r0`..`bench-r9`
  (ten subscribers each, 0-99), `bench-history` (1,000,000 messages, COPYed once).
"""

import argparse
import hashlib
import io
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH_DB = "travelsite_bench"


def _setup_django() -> None:
    url = os.environ.get("DATABASE_URL", "")
    if not url.rstrip("/").endswith("/" + BENCH_DB):
        sys.exit(f"DATABASE_URL must name the {BENCH_DB} database (got {url!r})")
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "travelsite.settings")
    import django

    django.setup()


def token_key(username: str) -> str:
    return hashlib.sha1(f"travelsite-bench:{username}".encode(), usedforsecurity=False).hexdigest()


def ensure_users(names: list[str]) -> dict[str, tuple[int, str]]:
    """{username: (user id, token key)}, creating what is missing in bulk."""
    from django.contrib.auth.hashers import make_password
    from django.contrib.auth.models import User
    from rest_framework.authtoken.models import Token

    from accounts.models import Profile

    unusable = make_password(None)
    existing = set(User.objects.filter(username__in=names).values_list("username", flat=True))
    missing = [n for n in names if n not in existing]
    for start in range(0, len(missing), 1000):
        User.objects.bulk_create(
            [
                User(username=n, password=unusable, first_name="Bench", last_name=n.split("_")[-1])
                for n in missing[start : start + 1000]
            ],
            ignore_conflicts=True,
        )
    ids = dict(User.objects.filter(username__in=names).values_list("username", "pk"))
    Token.objects.bulk_create(
        [Token(key=token_key(n), user_id=ids[n]) for n in names],
        ignore_conflicts=True,
        batch_size=1000,
    )
    Profile.objects.bulk_create(
        [Profile(user_id=ids[n]) for n in names], ignore_conflicts=True, batch_size=1000
    )
    keys = dict(Token.objects.filter(user_id__in=ids.values()).values_list("user_id", "key"))
    return {n: (ids[n], keys[ids[n]]) for n in names}


def ensure_room(name: str, member_ids: list[int]) -> int:
    from chat.models import ChatRoom, ChatRoomParticipant

    room, _ = ChatRoom.objects.get_or_create(kind=ChatRoom.Kind.PUBLIC, name=name)
    ChatRoomParticipant.objects.bulk_create(
        [
            ChatRoomParticipant(
                room=room, user_id=uid, last_read_message_id=room.last_message_id or 0
            )
            for uid in member_ids
        ],
        ignore_conflicts=True,
        batch_size=1000,
    )
    return int(room.pk)


def ensure_history(room_id: int, sender_id: int, target: int) -> dict[str, Any]:
    """COPY messages into the history room until it holds `target`; the page cursors."""
    from django.db import connection

    from chat.models import ChatMessage, ChatRoom

    count = ChatMessage.objects.filter(room_id=room_id).count()
    started = time.monotonic()
    if count < target:
        missing = target - count
        batch = 100_000
        with connection.cursor() as cursor:
            for start in range(0, missing, batch):
                rows = io.StringIO()
                for i in range(count + start, count + min(start + batch, missing)):
                    rows.write(
                        f"{room_id}\t{sender_id}\tHistory message number {i}\t\\N\t"
                        f"2024-01-01 00:00:00+00\tf\n"
                    )
                rows.seek(0)
                with cursor.copy(
                    "COPY chat_chatmessage (room_id, sender_id, message, client_id, created_at,"
                    " is_hidden) FROM STDIN"
                ) as copy:
                    copy.write(rows.getvalue())
            cursor.execute("ANALYZE chat_chatmessage")
        last = ChatMessage.objects.filter(room_id=room_id).order_by("-id").first()
        ChatRoom.objects.filter(pk=room_id).update(last_message=last)
        count = target
    newest = ChatMessage.objects.filter(room_id=room_id).order_by("-id")

    def id_at_depth(depth: int) -> int | None:
        row = newest.values_list("id", flat=True)[depth : depth + 1]
        return row[0] if row else None

    return {
        "room": room_id,
        "count": count,
        "before100k": id_at_depth(min(100_000, count - 1)),
        "before900k": id_at_depth(min(900_000, count - 1)),
        "inserted_seconds": round(time.monotonic() - started, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--subscribers", type=int, default=500)
    parser.add_argument("--senders", type=int, default=20)
    parser.add_argument("--idle", type=int, default=2000)
    parser.add_argument("--history", type=int, default=1_000_000)
    args = parser.parse_args()
    _setup_django()
    from django.core.management import call_command

    # Other work lands migrations all the time: bring the benchmark database up to date.
    call_command("migrate", interactive=False, verbosity=0)

    subs = [f"bench_sub_{i}" for i in range(args.subscribers)]
    senders = [f"bench_snd_{i}" for i in range(args.senders)]
    idle = [f"bench_idle_{i}" for i in range(args.idle)]
    users = ensure_users([*subs, *senders, *idle, "bench_hist"])
    sub_ids = [users[n][0] for n in subs]
    sender_ids = [users[n][0] for n in senders]
    rooms = {
        "bench-100": ensure_room("bench-100", sub_ids[:100] + sender_ids),
        "bench-500": ensure_room("bench-500", sub_ids + sender_ids),
    }
    for r in range(10):
        rooms[f"bench-r{r}"] = ensure_room(
            f"bench-r{r}", sub_ids[r * 10 : r * 10 + 10] + sender_ids
        )
    hist_id, hist_token = users["bench_hist"]
    rooms["bench-history"] = ensure_room("bench-history", [hist_id])
    history = ensure_history(rooms["bench-history"], hist_id, args.history)
    json.dump(
        {
            "subs": [users[n][1] for n in subs],
            "senders": [users[n][1] for n in senders],
            "idle": [users[n][1] for n in idle],
            "historyToken": hist_token,
            "rooms": rooms,
            "history": history,
        },
        sys.stdout,
    )


if __name__ == "__main__":
    main()
