"""The Store contract, for every store: the ledger, the windows, the modes, the bulk reads.

Each test opens its state through the `state` fixture, which yields an opener for one fresh
state: a temporary SQLite file, or a new database on a PostgreSQL server (conftest's
`postgres_server`; skipped without one, unless CI is set).
Everything about the SQLite file itself is in test_state_sqlite.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from digest.dedupe import Candidate, merge
from digest.errors import StateError, StateLockedError
from digest.models import Delivery, ParsedEntry
from digest.state import Mode, Store, open_store

T0 = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)
DAY = date(2026, 11, 20)
BEFORE = T0 - timedelta(days=1)

Opener = Callable[..., Store]


@pytest.fixture(params=["sqlite", "postgresql"])
def state(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    """Opens one fresh state in a mode (`state()`: write, `state("read")` …): a new SQLite
    file, or a new database on the session's PostgreSQL server."""
    location: Path | str = tmp_path / "state.sqlite"
    server = None
    if request.param == "postgresql":
        server = request.getfixturevalue("postgres_server")
        location = server.create_database()

    def opener(mode: Mode = "write") -> Store:
        return open_store(location, mode)

    yield opener
    if server is not None:
        from digest.state.postgres import close_pools

        close_pools()
        server.drop_database(str(location))


def cands(feed: str, *links: str, published: datetime | None = T0) -> list[Candidate]:
    items = [
        ParsedEntry(
            title=f"Paper {x}", link=x, guid=f"https://papers.example/{x}", published=published
        )
        for x in links
    ]
    return merge([(feed, f"https://{feed}.example/feed", items)])


def sent(reader: str, day: date, *entry_ids: str, cutoff: datetime = T0) -> Delivery:
    return Delivery(reader, day, "sent", f"<{reader}@x>", entry_ids, cutoff, cutoff)


def ids(
    store: Store, reader: str | None, after: datetime = BEFORE, until: datetime = T0
) -> list[str]:
    return [e.link or e.id for e in store.new_entries(reader, after, until)]


def test_entries_are_new_once_and_remember_every_feed(state: Opener) -> None:
    with state() as store:
        assert store.record_feed("a", "A", T0, status="200", candidates=cands("a", "x", "y")) == 2
        later = T0 + timedelta(hours=1)
        assert (
            store.record_feed("b", "B", later, status="200", candidates=cands("b", "y", "z")) == 1
        )
        assert store.count_entries() == 3
        by_link = {e.link: e for e in store.new_entries("r", T0 - timedelta(days=1), later)}
        assert by_link["y"].feeds == ("a", "b")
        assert by_link["y"].first_seen == T0
        assert by_link["z"].first_seen == later


def test_new_entries_window_is_half_open_and_skips_delivered(state: Opener) -> None:
    with state() as store:
        store.record_feed("a", "A", T0, status="200", candidates=cands("a", "x"))
        store.record_feed(
            "a", "A", T0 + timedelta(hours=2), status="200", candidates=cands("a", "y")
        )
        links = lambda after, until: [e.link for e in store.new_entries("r", after, until)]  # noqa: E731
        assert links(T0, T0 + timedelta(hours=3)) == ["y"]  # first_seen == after is excluded
        assert links(T0 - timedelta(seconds=1), T0) == ["x"]  # first_seen == until is included
        x = store.new_entries("r", T0 - timedelta(days=1), T0)[0]
        store.record_delivery(Delivery("r", date(2026, 11, 20), "sent", "<m@x>", (x.id,), T0, T0))
        assert links(T0 - timedelta(days=1), T0 + timedelta(days=1)) == ["y"]
        assert [e.link for e in store.new_entries("other", T0 - timedelta(days=1), T0)] == ["x"]


def test_the_deliveries_ledger_allows_one_digest_per_reader_and_date(state: Opener) -> None:
    with state() as store:
        first = Delivery("r", date(2026, 11, 20), "sent", "<m@x>", (), T0, T0)
        store.record_delivery(first)
        assert store.delivery("r", date(2026, 11, 20)) == first
        with pytest.raises(StateError, match="already has a digest for r on 2026-11-20"):
            store.record_delivery(first)
        assert store.last_delivery("r") == first


def test_a_runs_pending_digests_are_stored_all_or_none(state: Opener) -> None:
    day = date(2026, 11, 20)
    with state() as store:
        pending = [
            Delivery(f"r{i}", day, "pending", f"<m{i}@x>", (f"e{i}",), T0, T0, message=b"x")
            for i in range(3)
        ]
        store.record_delivery(pending[2])
        with pytest.raises(StateError, match="already has a digest for r2"):
            store.record_deliveries(pending)  # the third is already there
        assert [store.delivery(f"r{i}", day) for i in range(2)] == [None, None]
        store.record_deliveries(pending[:2])
        assert [store.delivery(f"r{i}", day) for i in range(3)] == pending


def test_a_sent_digest_keeps_no_message_and_pruning_forgets_whom_old_entries_went_to(
    state: Opener,
) -> None:
    with state() as store:
        store.record_feed(
            "https://a.example/feed", "a", T0, status="200", candidates=cands("a", "x")
        )
        (entry,) = store.new_entries("r", T0 - timedelta(hours=1), T0)
        pending = Delivery("r", DAY, "pending", "<m@x>", (entry.id,), T0, T0, message=b"raw")
        store.record_delivery(pending)
        assert store.delivery("r", DAY).message == b"raw"  # type: ignore[union-attr]
        store.mark_done("r", DAY, "sent", "r@example.org", attempts=1)
        assert store.delivery("r", DAY).message is None  # type: ignore[union-attr]
        assert store.sent_entry_ids(["r"], [entry.id]) == {"r": {entry.id}}
        store.prune(T0 + timedelta(days=10), keep_days=30)
        assert store.count_entries() == 1
        store.prune(T0 + timedelta(days=31), keep_days=30)
        assert store.count_entries() == 0
        assert store.sent_entry_ids(["r"], [entry.id]) == {"r": frozenset()}
        # its key is kept: the same paper is not new again
        again = store.record_feed("b", "B", T0 + timedelta(days=32), status="200",
                                  candidates=cands("b", "x"))  # fmt: skip
        assert again == 0


def test_marking_a_digest_done_that_is_not_waiting_is_an_error(state: Opener) -> None:
    with state() as store:
        with pytest.raises(StateError, match="no pending digest for r on 2026-11-20"):
            store.mark_done("r", DAY, "sent", "r@example.org", attempts=1)
        store.record_delivery(sent("r", DAY))
        with pytest.raises(StateError, match="no pending digest"):
            store.mark_done("r", DAY, "sent", "r@example.org", attempts=1)


def test_a_folded_digest_gives_its_entries_to_the_next_one(state: Opener) -> None:
    yesterday, today = DAY - timedelta(days=1), DAY
    with state() as store:
        store.record_feed("a", "A", T0 - timedelta(days=1), status="200",
                          candidates=cands("a", "old"))  # fmt: skip
        (old,) = store.new_entries("r", T0 - timedelta(days=2), T0)
        store.record_delivery(
            Delivery("r", yesterday, "pending", "<m@x>", (old.id,), T0, T0, message=b"raw")
        )
        store.mark_undelivered("r", yesterday, "pending", "451 try later", attempts=3)
        assert store.delivery("r", yesterday).last_error == "451 try later"  # type: ignore[union-attr]
        assert store.fold_undelivered("r", before=today) == 1
        assert store.fold_undelivered("r", before=today) == 0
        store.record_feed("a", "A", T0, status="200", candidates=cands("a", "new"))
        # the folded entry is outside today's window, and comes with it
        assert ids(store, "r", T0 - timedelta(hours=1)) == ["old", "new"]
        assert ids(store, "other", T0 - timedelta(hours=1)) == ["new"]
        assert store.folded_entry_ids(["r", "other"]) == {"r": {old.id}, "other": frozenset()}
        # a row for the folded date replaces the folded one
        store.record_delivery(sent("r", yesterday, old.id))
        assert store.delivery("r", yesterday).status == "sent"  # type: ignore[union-attr]
        assert ids(store, "r", T0 - timedelta(hours=1)) == ["new"]


def test_failed_fetch_keeps_old_validators_out(state: Opener) -> None:
    with state() as store:
        store.record_feed("a", "A", T0, status="200", etag='"v1"', candidates=[])
        store.record_feed("a", "A", T0 + timedelta(days=1), status="500", error="HTTP 500")
        status = store.feed_statuses()["a"]
        assert status.etag == '"v1"' and status.last_error == "HTTP 500"
        assert status.last_success == T0


def test_categories_and_arxiv_fields_are_kept(state: Opener) -> None:
    paper = ParsedEntry(
        title="A paper",
        link="https://arxiv.org/abs/2401.00001",
        categories=("cs.LG", "stat.ML"),
        arxiv_id="2401.00001",
        arxiv_version=1,
        announce_type="new",
        published=T0,
    )
    replaced = ParsedEntry(
        title="A paper, revised",
        link="https://arxiv.org/abs/2401.00001v2",
        arxiv_id="2401.00001",
        arxiv_version=2,
        announce_type="replace",
    )
    with state() as store:
        store.record_feed("a", "A", T0, status="200", candidates=merge([("a", "a", [paper])]))
        later = T0 + timedelta(days=1)
        assert (
            store.record_feed(
                "a", "A", later, status="200", candidates=merge([("a", "a", [replaced])])
            )
            == 0
        )
        (entry,) = store.new_entries("r", T0 - timedelta(days=1), later)
    assert entry.id == "arxiv:2401.00001"
    assert entry.categories == ("cs.LG", "stat.ML")
    assert (entry.title, entry.arxiv_version, entry.announce_type) == ("A paper", 2, "replace")


def test_a_batch_is_one_transaction_and_each_step_stays_whole(state: Opener) -> None:
    with state() as store:
        with pytest.raises(ZeroDivisionError), store.batch():
            store.record_feed("a", "A", T0, status="200", candidates=cands("a", "x"))
            1 / 0  # noqa: B018 - a crash in the middle of a run's collection
        assert store.count_entries() == 0
        with store.batch():
            store.record_feed("a", "A", T0, status="200", candidates=cands("a", "x"))
            with pytest.raises(StateError):
                store.record_feed("a", "A", T0, status="bad", candidates=[bad_candidate()])
            store.record_feed("b", "B", T0, status="200", candidates=cands("b", "y"))
    with state() as store:
        assert {e.link for e in store.new_entries("r", T0 - timedelta(days=1), T0)} == {"x", "y"}
        assert store.feed_statuses()["a"].last_status == "200"  # the failed step left nothing


def bad_candidate() -> Candidate:
    """One that the entries table refuses (a NULL title), after its feed row was written."""
    (good,) = cands("c", "z")
    return Candidate(good.id, ParsedEntry(title=None, link="z"), ("c",), good.keys)  # type: ignore[arg-type]


# --- a window read once for many readers -----------------------------------------------------


def test_the_bulk_reads_give_each_reader_what_new_entries_gives_them(state: Opener) -> None:
    """Readers with every kind of history: new, sent some of the window, sent everything,
    with a folded digest, delivered yesterday or two days ago."""
    with state() as store:
        store.record_feed("a", "A", T0 - timedelta(days=2), status="200",
                          candidates=cands("a", "f1", "f2"))  # fmt: skip
        store.record_feed("a", "A", T0, status="200", candidates=cands("a", "w1", "w2", "w3"))
        by_link = {e.link: e.id for e in store.new_entries(None, T0 - timedelta(days=3), T0)}
        window = store.window_entries(BEFORE, T0)
        assert [e.link for e in window] == ["w1", "w2", "w3"]
        store.record_deliveries([
            sent("new-ish", DAY - timedelta(days=2), cutoff=T0 - timedelta(days=2)),
            sent("some", DAY, by_link["w1"], cutoff=T0 - timedelta(hours=1)),
            sent("all", DAY, by_link["w1"], by_link["w2"], by_link["w3"]),
            Delivery("folder", DAY - timedelta(days=1), "folded", None,
                     (by_link["f1"],), T0 - timedelta(days=1), T0 - timedelta(days=1)),
            sent("folder", DAY - timedelta(days=2), cutoff=T0 - timedelta(days=2)),
        ])  # fmt: skip
        readers = ["nobody", "new-ish", "some", "all", "folder"]
        last = store.last_deliveries(readers)
        assert set(last) == {"new-ish", "some", "all", "folder"}
        assert last["folder"].local_date == DAY - timedelta(days=2)  # type: ignore[union-attr]
        assert store.last_delivery("nobody") is None
        window_ids = [e.id for e in window]
        already = store.sent_entry_ids(readers, window_ids)
        folded = store.folded_entry_ids(readers)
        assert already["all"] == set(window_ids) and already["nobody"] == frozenset()
        for reader in readers:
            extra = store.entries_by_id(folded[reader] - set(window_ids))
            bulk = sorted([*window, *extra.values()], key=lambda e: (e.first_seen, e.id))
            expected = [e for e in bulk if e.id not in already[reader]]
            assert store.new_entries(reader, BEFORE, T0) == expected, reader
        assert ids(store, "folder") == ["f1", "w1", "w2", "w3"]
        assert ids(store, "some") == ["w2", "w3"]
        assert ids(store, "all") == []


def test_entries_by_id_leaves_out_unknown_pruned_and_backlog_ids(state: Opener) -> None:
    with state() as store:
        store.record_feed("a", "A", T0 - timedelta(days=40), status="200",
                          candidates=cands("a", "old"))  # fmt: skip
        store.record_feed("a", "A", T0, status="200", candidates=cands("a", "kept"))
        # a second feed's first fetch into a state in use: its old item is backlog
        backlog = cands("b", "backlog", published=T0 - timedelta(days=9))
        store.record_feed("b", "B", T0, status="200", candidates=backlog)
        every = {e.link: e.id for e in store.window_entries(T0 - timedelta(days=41), T0)}
        assert set(every) == {"old", "kept"}
        store.prune(T0, keep_days=30)
        found = store.entries_by_id([every["old"], every["kept"], "urn:nothing"])
        assert [e.link for e in found.values()] == ["kept"]
        assert store.entries_by_id([]) == {}


# --- the modes -----------------------------------------------------------------------------


def test_a_scratch_store_changes_nothing_in_the_state(state: Opener) -> None:
    with state() as store:
        store.record_feed("a", "A", T0, status="200", candidates=cands("a", "x"))
    with state("scratch") as scratch:
        assert scratch.mode == "scratch"
        scratch.record_feed("a", "A", T0, status="200", candidates=cands("a", "y", "z"))
        scratch.record_delivery(sent("r", DAY))
        assert scratch.count_entries() == 3
    with state() as store:
        assert store.count_entries() == 1
        assert store.delivery("r", DAY) is None


def test_a_read_store_refuses_changes_and_sees_the_state_as_it_was_opened(
    state: Opener,
) -> None:
    with state() as store:
        store.record_feed("a", "A", T0, status="200", candidates=cands("a", "x"))
    with state("read") as reader:
        with pytest.raises(StateError, match="opened for reading only"):
            reader.record_delivery(sent("r", DAY))
        with pytest.raises(StateError, match="opened for reading only"):
            with reader.batch():
                pass
        with state() as writer:  # a read store takes no lock
            writer.record_feed("b", "B", T0, status="200", candidates=cands("b", "y"))
        assert reader.count_entries() == 1
    with state("read") as reader:
        assert reader.count_entries() == 2


def test_read_and_scratch_stores_of_a_state_not_made_yet_are_empty(state: Opener) -> None:
    for mode in ("read", "scratch"):
        with state(mode) as store:
            assert store.count_entries() == 0 and store.feed_statuses() == {}
            assert store.last_delivery("r") is None
    with state() as store:  # and the first writer still finds it new
        assert store.record_feed("a", "A", T0, status="200", candidates=cands("a", "x")) == 1


def test_a_second_writer_is_refused_while_readers_are_not(state: Opener) -> None:
    with state() as first:
        with pytest.raises(StateLockedError, match="in use by another digest process"):
            state()
        for mode in ("read", "scratch"):
            with state(mode) as other:
                assert other.count_entries() == 0
        first.record_feed("a", "A", T0, status="200", candidates=cands("a", "x"))
    with state() as again:
        assert again.count_entries() == 1


def test_an_unknown_kind_of_state_is_a_clear_error() -> None:
    with pytest.raises(StateError, match=r"no store for \(a file path"):
        open_store("mongodb://db.example/digest")
    with pytest.raises(ValueError, match="mode"):
        open_store(Path("x.sqlite"), "append")  # type: ignore[arg-type]


def test_a_feed_row_moved_to_a_new_key_keeps_its_history_and_drops_the_old_key(
    state: Opener,
) -> None:
    secret = "https://user:hunter2@feeds.example/rss"
    with state() as store:
        store.record_feed(
            secret, "F", T0, status="200", etag='"v1"', fetched_url=secret,
            candidates=cands("a", "x"),
        )  # fmt: skip
        store.record_feed(
            secret, "F", T0 + timedelta(hours=1), status="503", error=f"{secret}: 503",
            next_fetch=T0 + timedelta(hours=2), failures=1,
        )  # fmt: skip
        store.rekey_feed(
            secret, "https://feeds.example/rss#1", fetched_url="https://feeds.example/rss",
            moved_to=None, last_error="https://…@feeds.example/rss: 503",
        )  # fmt: skip
        store.rekey_feed("https://nothing.example/", "x", fetched_url=None, moved_to=None,
                         last_error=None)  # fmt: skip
    with state("read") as store:
        statuses = store.feed_statuses()
    assert list(statuses) == ["https://feeds.example/rss#1"]
    moved = statuses["https://feeds.example/rss#1"]
    assert (moved.etag, moved.failures, moved.next_fetch) == ('"v1"', 1, T0 + timedelta(hours=2))
    assert moved.fetched_url == "https://feeds.example/rss" and "hunter2" not in str(moved)


def test_pruning_forgets_old_ledger_rows_but_each_readers_latest_and_the_pages(
    state: Opener,
) -> None:
    old, recent = date(2026, 1, 5), date(2026, 11, 19)
    row = lambda r, d, status="sent": Delivery(r, d, status, None, (), T0, T0)  # noqa: E731
    with state() as store:
        store.record_deliveries([
            row("subscriber:ada", old), row("subscriber:ada", recent),
            row("subscriber:gone", old),  # left long ago: its last digest is its window start
            row("subscriber:grace", old, "empty"), row("subscriber:grace", recent),
            row("markdown:wiki/{date}.md", old, "written"),
        ])  # fmt: skip
        store.prune(T0, keep_days=180)
        kept = {
            (reader, d.local_date)
            for reader in ("subscriber:ada", "subscriber:gone", "subscriber:grace",
                           "markdown:wiki/{date}.md")
            for d in store.deliveries(reader)
        }  # fmt: skip
        assert kept == {
            ("subscriber:ada", recent),
            ("subscriber:gone", old),
            ("subscriber:grace", recent),
            ("markdown:wiki/{date}.md", old),
        }
        last = store.last_delivery("subscriber:gone")
        assert last is not None and last.local_date == old
