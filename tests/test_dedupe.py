"""canonical_id and merge: which parsed items are the same entry, across feeds."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from digest.dedupe import Candidate, canonical_id, identity_keys, merge, normalise_url
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


def test_arxiv_id_is_the_strongest_key() -> None:
    paper = item(guid="urn:arxiv:2411.00001", link="https://arxiv.org/abs/2411.00001v3")
    assert canonical_id(paper, A) == "arxiv:2411.00001"


def test_normalised_link_is_preferred_to_guid() -> None:
    post = item(guid="urn:blog:1", link="http://WWW.x.example/posts/1/?utm_source=rss")
    assert identity_keys(post, A)[:2] == ("https://x.example/posts/1", "urn:blog:1")


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
            ("Résumé parsing with transformers: a field study", A),
            ("resume parsing with transformers — a field study!", B),
            ("  RÉSUMÉ PARSING WITH TRANSFORMERS  A FIELD STUDY ", A),
        ]
    }
    assert len(ids) == 1
    assert canonical_id(item("Résumé parsing with transformers: a sequel"), A) not in ids


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


def groups(batches: list[Batch]) -> set[frozenset[tuple[str, ParsedEntry]]]:
    """Which input items merge() put together, whatever represents them."""
    merged = merge(batches)
    owner = {k: i for i, c in enumerate(merged) for k in c.keys}
    found: dict[int, set[tuple[str, ParsedEntry]]] = {}
    for name, url, entries in batches:
        for entry in entries:
            (i,) = {owner[k] for k in identity_keys(entry, url)}  # all its keys in one entry
            found.setdefault(i, set()).add((name, entry))
    assert len(found) == len(merged)
    return {frozenset(g) for g in found.values()}


@given(batches)
def test_merge_is_idempotent(batches: list[Batch]) -> None:
    """Every item's keys lead to one entry, and the same feeds read again add nothing."""
    merged = merge(batches)
    assert len(groups(batches)) == len(merged)
    assert summary(merge(batches + batches)) == summary(merged)


@given(batches)
def test_merge_groups_the_same_items_in_any_order(batches: list[Batch]) -> None:
    assert groups(batches) == groups(batches[::-1])


@given(batches, st.data())
def test_merge_is_independent_of_duplicates(batches: list[Batch], data: st.DataObject) -> None:
    repeated = [
        (name, url, [x for x in entries for _ in range(data.draw(st.integers(1, 3)))])
        for name, url, entries in batches
    ]
    assert merge(repeated + batches) == merge(batches)


# --- canonical identity ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("guid", "link"),
    [
        ("oai:arXiv.org:2401.00001v1", "https://arxiv.org/abs/2401.00001"),
        (None, "http://arxiv.org/abs/2401.00001v2"),
        ("http://arxiv.org/abs/2401.00001v2", None),
        (None, "https://arxiv.org/pdf/2401.00001v3"),
        (None, "https://arxiv.org/pdf/2401.00001.pdf"),
        (None, "https://arxiv.org/html/2401.00001v1"),
        ("https://huggingface.co/papers/2401.00001", "https://huggingface.co/papers/2401.00001"),
        ("arXiv:2401.00001", None),
    ],
)
def test_every_spelling_of_an_arxiv_paper_has_one_id(guid: str | None, link: str | None) -> None:
    assert canonical_id(item(guid=guid, link=link), A) == "arxiv:2401.00001"


def test_old_style_arxiv_ids_keep_their_archive() -> None:
    old = item(link="http://arxiv.org/abs/hep-th/9901001v2")
    assert canonical_id(old, A) == "arxiv:hep-th/9901001"
    assert canonical_id(item(guid="oai:arXiv.org:math.AG/0601001"), A) == "arxiv:math.ag/0601001"
    assert canonical_id(item(link="https://arxiv.org/abs/hep-th/9901002"), A) != canonical_id(
        old, A
    )


def test_doi_beats_the_url() -> None:
    a = item(link="https://doi.org/10.1145/3597503.3639187")
    b = item(guid="doi:10.1145/3597503.3639187", link="https://dl.acm.org/doi/x")
    assert canonical_id(a, A) == canonical_id(b, B) == "doi:10.1145/3597503.3639187"


@pytest.mark.parametrize(
    "url",
    [
        "https://blog.example/post/7",
        "http://blog.example/post/7",
        "https://WWW.Blog.Example/post/7/",
        "https://blog.example:443/post/7#comments",
        "https://blog.example/post/7?utm_source=rss&utm_medium=feed&fbclid=abc",
    ],
)
def test_urls_are_normalised(url: str) -> None:
    assert normalise_url(url) == "https://blog.example/post/7"


def test_url_query_that_names_the_page_is_kept() -> None:
    assert normalise_url("https://x.example/?p=7&utm_campaign=z") == "https://x.example?p=7"
    assert normalise_url("https://x.example/?p=7") != normalise_url("https://x.example/?p=8")
    assert normalise_url("mailto:someone@x.example") is None


def test_guid_churn_with_the_same_link_is_one_entry() -> None:
    first = item("Same post", guid="urn:uuid:1", link="https://blog.example/p/1")
    again = item("Same post", guid="urn:uuid:2", link="https://blog.example/p/1?utm_source=x")
    assert len(merge([("a", A, [first]), ("a", A, [again])])) == 1


def test_link_to_the_home_page_is_not_an_identity() -> None:
    one = item("First note", guid="1", link="https://blog.example/")
    two = item("Second note", guid="2", link="https://blog.example")
    assert len(merge([("a", A, [one, two])])) == 2


@pytest.mark.parametrize(
    "title",
    [
        "Untitled",
        "Episode 12",
        "Episode 12: the return of the king",
        "Issue #345 — news from the week",
        "Weekly links and updates",
        "Links for 2026-11-20 and more things",
        "Update",
    ],
)
def test_stock_and_numbered_titles_never_merge(title: str) -> None:
    a = item(title, link="https://a.example/posts/1")
    b = item(title, link="https://b.example/posts/9")
    assert len(merge([("a", A, [a]), ("b", B, [b])])) == 2


def test_a_distinctive_title_merges_across_feeds() -> None:
    a = item("Attention is all you need, again", link="https://a.example/posts/1")
    b = item("Attention Is All You Need — Again", link="https://b.example/posts/9")
    (merged,) = merge([("a", A, [a]), ("b", B, [b])])
    assert merged.feeds == ("a", "b")


def test_an_item_linking_two_entries_joins_them() -> None:
    first = item("One", guid="urn:p:1")
    second = item("Two", link="https://x.example/p/2")
    both = item("Three", guid="urn:p:1", link="https://x.example/p/2")
    merged = merge([("a", A, [first, second]), ("b", B, [both])])
    assert summary(merged) == [("urn:p:1", "One", ("a", "b"))]


def test_papers_with_different_arxiv_ids_never_merge_by_title() -> None:
    a = item(
        "A survey of reinforcement learning from feedback", link="https://arxiv.org/abs/2401.00001"
    )
    b = item(
        "A survey of reinforcement learning from feedback", link="https://arxiv.org/abs/2402.00002"
    )
    assert len(merge([("a", A, [a]), ("b", B, [b])])) == 2
