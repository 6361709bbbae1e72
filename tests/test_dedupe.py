"""canonical_id and merge: which parsed items are the same entry, across feeds."""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import given
from hypothesis import strategies as st

from digest.dedupe import Candidate, canonical_id, merge
from digest.models import ParsedEntry

A = "https://a.example/feed.xml"
B = "https://b.example/atom.xml"
URLS = {"a": A, "b": B, "c": "/srv/feeds/c.json"}

Batch = tuple[str, str, Sequence[ParsedEntry]]


def item(title: str = "A paper", guid: str | None = None, link: str | None = None) -> ParsedEntry:
    return ParsedEntry(title=title, guid=guid, link=link)


def summary(candidates: list[Candidate]) -> list[tuple[str, str, tuple[str, ...]]]:
    return [(c.id, c.entry.title, c.feeds) for c in candidates]


# --- canonical_id ----------------------------------------------------------------------------


def test_guid_is_preferred_to_link() -> None:
    paper = item(guid="urn:arxiv:2411.00001", link="https://arxiv.org/abs/2411.00001")
    assert canonical_id(paper, A) == "urn:arxiv:2411.00001"


def test_link_is_used_without_guid() -> None:
    assert canonical_id(item(link="https://x.example/1"), A) == "https://x.example/1"


def test_guid_without_scheme_is_scoped_to_its_feed() -> None:
    merged = merge([("a", A, [item("From a", guid="42")]), ("b", B, [item("From b", guid="42")])])
    assert [c.entry.title for c in merged] == ["From a", "From b"]
    assert merged[0].id != merged[1].id


def test_guid_with_scheme_is_the_same_entry_in_every_feed() -> None:
    merged = merge(
        [("a", A, [item("From a", guid="https://x/1")]), ("b", B, [item(guid="https://x/1")])]
    )
    assert summary(merged) == [("https://x/1", "From a", ("a", "b"))]


def test_title_hash_ignores_case_punctuation_accents_and_spacing() -> None:
    ids = {
        canonical_id(item(title), url)
        for title, url in [
            ("Résumé parsing: a study", A),
            ("resume parsing — a study!", B),
            ("  RÉSUMÉ PARSING  A STUDY ", A),
        ]
    }
    assert len(ids) == 1
    assert canonical_id(item("Résumé parsing: a sequel"), A) not in ids


# --- merge -------------------------------------------------------------------------------


def test_first_occurrence_wins_and_feeds_accumulate_in_order() -> None:
    merged = merge(
        [
            ("b", B, [item("B's title", guid="urn:p:1")]),
            ("a", A, [item("Other", guid="urn:p:2"), item("A's title", guid="urn:p:1")]),
            ("c", URLS["c"], [item("C's title", guid="urn:p:1")]),
        ]
    )
    assert summary(merged) == [
        ("urn:p:1", "B's title", ("b", "a", "c")),
        ("urn:p:2", "Other", ("a",)),
    ]


def test_same_feed_twice_is_listed_once() -> None:
    paper = item(guid="urn:p:1")
    merged = merge([("a", A, [paper, paper]), ("b", B, [paper]), ("a", A, [paper])])
    assert summary(merged) == [("urn:p:1", "A paper", ("a", "b"))]


# --- invariants --------------------------------------------------------------------------

items = st.builds(
    ParsedEntry,
    title=st.sampled_from(["Attention", "attention!", "Atténtion", "Other paper"]),
    guid=st.sampled_from([None, "42", "7", "https://x/1", "urn:p:9"]),
    link=st.sampled_from([None, "https://x/1", "https://x/2"]),
)
batches = st.lists(
    st.tuples(st.sampled_from(sorted(URLS)), st.lists(items, max_size=6)).map(
        lambda pair: (pair[0], URLS[pair[0]], pair[1])
    ),
    max_size=5,
)


@given(batches)
def test_merge_is_idempotent(batches: list[Batch]) -> None:
    merged = merge(batches)
    again = merge([(f, URLS[f], [c.entry]) for c in merged for f in c.feeds])
    assert summary(again) == summary(merged)


@given(batches, st.data())
def test_merge_is_independent_of_duplicates(batches: list[Batch], data: st.DataObject) -> None:
    repeated = [
        (name, url, [x for x in entries for _ in range(data.draw(st.integers(1, 3)))])
        for name, url, entries in batches
    ]
    assert merge(repeated + batches) == merge(batches)
