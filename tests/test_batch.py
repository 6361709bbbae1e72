"""The batched run builds, for many readers at once, exactly the digests the reader-by-reader
path builds: the same windows, the same folded entries back, the same entries left out as
already sent, the same picks and scores."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from xml.sax.saxutils import escape

from digest.config import load_config
from digest.delivery.email import subscriber_reader
from digest.delivery.outbox import Ledger
from digest.models import Config, Delivery, Digest
from digest.pipeline import BatchBuilder, build_digest, make_ranker, run
from digest.state import open_store

DAY1 = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)
TOPICS = ["reinforcement learning", "language model", "robot policy", "image diffusion"]


def write_feed(path: Path, day: int) -> None:
    items = "".join(
        f"<item><title>{escape(f'{topic} paper {day}.{i}')}</title>"
        f"<link>https://papers.example/{day}/{i}</link>"
        f"<guid>https://papers.example/{day}/{i}</guid>"
        f"<description>About {escape(topic)} and more {escape(topic)}.</description></item>"
        for i, topic in enumerate(TOPICS * 3)
    )
    path.write_text(f"<rss version='2.0'><channel><title>t</title>{items}</channel></rss>")


def make_config(tmp_path: Path, names: list[str]) -> Config:
    people = "".join(
        f"[[subscribers]]\nname = '{name}'\nemail = '{name}@example.org'\n"
        f"profile = '{'rl' if i % 2 == 0 else 'robots'}'\n"
        for i, name in enumerate(names)
    )
    (tmp_path / "digest.toml").write_text(
        f"""
[digest]
state = "state.sqlite"
output = "out"

[[feeds]]
name = "local"
url = "feed.rss"

[profiles.rl]
keywords = {{ "reinforcement learning" = 2, "language model" = 1 }}
[profiles.robots]
keywords = {{ "robot" = 2, "policy" = 1, "image" = 1 }}

{people}
"""
    )
    return load_config(tmp_path / "digest.toml")


def digests_both_ways(config: Config, now: datetime) -> tuple[list[Digest], list[Digest]]:
    readers = [(subscriber_reader(config, s), now.date()) for s in config.subscribers]
    with open_store(config.settings.state, "write") as store:
        ranker = make_ranker(config, store, now)
        one_by_one = [build_digest(config, store, r, now, (), ranker, day=d) for r, d in readers]

        async def batched() -> list[Digest]:
            with Ledger(store) as ledger:
                built = await BatchBuilder(config, now, (), ranker)(readers, ledger)
            assert all(isinstance(d, Digest) for d in built)
            return [d for d in built if isinstance(d, Digest)]

        return one_by_one, asyncio.run(batched())


def test_a_batch_builds_the_same_digests_as_reader_by_reader(tmp_path: Path) -> None:
    feed = tmp_path / "feed.rss"
    write_feed(feed, 1)
    run(make_config(tmp_path, ["ada", "hopper"]), DAY1)
    write_feed(feed, 2)
    # day 2: grace joins; hopper's digest of the day is left pending (the server deferred
    # it) with day-1 entries hopper was never sent, so on day 3 it is folded and they come
    # back although they are outside hopper's window; lin has had some of day 2's entries
    # in a digest whose cutoff is older than them, so they are left out as already sent
    day2 = DAY1 + timedelta(days=1)
    config = make_config(tmp_path, ["ada", "hopper", "grace"])
    run(replace(config, subscribers=config.subscribers[:1] + config.subscribers[2:]), day2)
    with open_store(config.settings.state, "write") as store:
        day1 = store.new_entries(None, DAY1 - timedelta(hours=1), DAY1)
        had = store.sent_entry_ids(["subscriber:hopper"], [e.id for e in day1])
        unsent = [e.id for e in day1 if e.id not in had["subscriber:hopper"]][:4]
        day2_entries = store.new_entries(None, DAY1, day2)
        ada_had = store.sent_entry_ids(["subscriber:ada"], [e.id for e in day2_entries])
        ada_unsent = [e.id for e in day2_entries if e.id not in ada_had["subscriber:ada"]][:3]
        store.record_deliveries([
            Delivery("subscriber:hopper", day2.date(), "pending", "<m@x>", tuple(unsent),
                     day2, day2, message=b"x"),
            # ada's folded entries are outside ada's window but inside lin's
            Delivery("subscriber:ada", DAY1.date() - timedelta(days=3), "pending", "<a@x>",
                     tuple(ada_unsent), DAY1, DAY1, message=b"x"),
            Delivery("subscriber:lin", DAY1.date(), "sent", "<l@x>",
                     tuple(e.id for e in day2_entries[:5]), DAY1 + timedelta(hours=1), day2),
        ])  # fmt: skip
    assert unsent, "hopper was not sent every day-1 entry"
    write_feed(feed, 3)
    day3 = day2 + timedelta(days=1)
    config = make_config(tmp_path, ["ada", "hopper", "grace", "lin"])
    # collect day 3's feed, deliver nothing yet
    run(replace(config, subscribers=()), day3)
    with open_store(config.settings.state, "write") as store:
        assert store.fold_undelivered("subscriber:hopper", before=day3.date()) == 1
        assert store.fold_undelivered("subscriber:ada", before=day3.date()) == 1
    one_by_one, batched = digests_both_ways(config, day3)
    shown = [
        (d.reader.name, d.considered, [(p.entry.id, p.score, p.matches) for p in d.picks])
        for d in one_by_one
    ]
    assert shown == [
        (d.reader.name, d.considered, [(p.entry.id, p.score, p.matches) for p in d.picks])
        for d in batched
    ]
    # the cases are really different: windows, folded entries and sent ones differ
    considered = {d.reader.name: d.considered for d in one_by_one}
    assert ada_unsent
    assert considered["ada"] == 12 + len(ada_unsent), "day 3's entries, and the folded ones"
    assert considered["hopper"] == 24 + len(unsent), "days 2 and 3, and the folded ones"
    assert considered["lin"] == 24 - 5, "days 2 and 3 less what lin had"
    assert considered["grace"] == 12
    assert all(d.picks for d in one_by_one)
