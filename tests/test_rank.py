"""KeywordRanker, score and why: which entries a profile picks, in what order, and why."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from datetime import timedelta

from factories import NOW, entry, profile
from hypothesis import given
from hypothesis import strategies as st

from digest.models import Entry, Match, Profile
from digest.rank import KeywordRanker, score, why


def picked(
    entries: Sequence[Entry], prof: Profile, weights: Mapping[str, float] | None = None
) -> list[str]:
    return [p.entry.title for p in KeywordRanker().rank(entries, prof, weights or {})]


def points(e: Entry, prof: Profile, weights: Mapping[str, float] | None = None) -> float:
    pick = score(e, prof, weights or {})
    assert pick is not None, "excluded"
    return pick.score


# --- matching ----------------------------------------------------------------------------


def test_term_matches_whole_words_only() -> None:
    entries = [
        entry("A URL shortener"),
        entry("RLHF at scale"),
        entry("CURLing for robots"),
        entry("Deep RL, again"),
        entry("Offline-RL benchmarks"),
    ]
    assert set(picked(entries, profile({"RL": 1}))) == {"Deep RL, again", "Offline-RL benchmarks"}


def test_matching_ignores_case() -> None:
    prof = profile({"Reinforcement Learning": 1, "RLHF": 1})
    assert set(picked([entry("reinforcement learning"), entry("rlhf"), entry("RL")], prof)) == {
        "reinforcement learning",
        "rlhf",
    }


def test_phrase_matches_across_line_break_and_double_space() -> None:
    prof = profile({"reinforcement learning": 1})
    for summary in ["deep reinforcement\nlearning", "reinforcement  learning, again"]:
        pick = score(entry("Untitled", summary), prof, {})
        assert pick is not None
        assert pick.matches == (Match("reinforcement learning", "summary", 1.0),)


def test_title_counts_double_the_summary() -> None:
    prof = profile({"agent": 1.5})
    in_summary = points(entry("Untitled", "an agent that plans"), prof)
    in_title = points(entry("An agent that plans"), prof)
    in_both = points(entry("An agent", "an agent that plans"), prof)
    assert in_summary == 1.5  # the term's weight
    assert in_title == 2 * in_summary
    assert in_both == in_title + in_summary


def test_feed_weight_multiplies_and_the_highest_feed_counts() -> None:
    prof = profile({"agent": 1})
    weights = {"papers": 1.5, "blog": 3.0}
    plain = points(entry("An agent", feeds=["unweighted"]), prof, weights)
    assert points(entry("An agent", feeds=["papers"]), prof, weights) == 1.5 * plain
    assert points(entry("An agent", feeds=["papers", "blog"]), prof, weights) == 3.0 * plain


# --- selection ---------------------------------------------------------------------------


def test_excluded_term_drops_an_entry_whatever_its_score() -> None:
    prof = profile({"RL": 5}, exclude=["survey"])
    entries = [
        entry("RL: a Survey"),
        entry("RL for robots", "This survey covers RL."),
        entry("RL for robots, done"),
    ]
    assert picked(entries, prof) == ["RL for robots, done"]
    assert score(entries[0], prof, {}) is None


def test_entries_under_min_score_are_dropped() -> None:
    prof = profile({"RL": 1}, min_score=2)  # title: 2 points, summary: 1
    entries = [entry("RL in the title"), entry("In the summary", "about RL"), entry("Nothing")]
    assert picked(entries, prof) == ["RL in the title"]


def test_entry_matching_nothing_is_never_picked_even_with_min_score_0() -> None:
    assert picked([entry("Nothing relevant")], profile({"RL": 1}, min_score=0)) == []


def test_max_entries_keeps_the_best() -> None:
    weights = {f"feed{i}": float(i) for i in range(1, 6)}
    entries = [entry(f"RL {i}", feeds=[f"feed{i}"]) for i in (3, 1, 5, 2, 4)]
    assert picked(entries, profile({"RL": 1}, max_entries=3), weights) == ["RL 5", "RL 4", "RL 3"]


def test_ties_go_to_the_newer_entry_then_the_id_whatever_the_input_order() -> None:
    day = timedelta(days=1)
    entries = [
        entry("RL old", published=NOW - 2 * day),
        entry("RL b", published=NOW),
        entry("RL undated", published=None),
        entry("RL a", published=NOW),
        entry("RL mid", published=NOW - day),
    ]
    expected = ["RL a", "RL b", "RL mid", "RL old", "RL undated"]
    for order in itertools.permutations(entries):
        assert picked(order, profile({"RL": 1})) == expected


# --- why ---------------------------------------------------------------------------------


def test_why_lists_each_term_with_its_fields_in_profile_order() -> None:
    prof = profile({"reinforcement learning": 3, "reward model": 2, "RLHF": 1})
    e = entry("A reward model for reinforcement learning", "We study reinforcement learning.")
    pick = score(e, prof, {})
    assert pick is not None
    assert why(pick) == "reinforcement learning (title + summary), reward model (title)"


def test_why_mentions_a_feed_weight() -> None:
    pick = score(entry("RLHF", feeds=["papers"]), profile({"RLHF": 1}), {"papers": 1.2})
    assert pick is not None
    assert why(pick) == "RLHF (title); feed weight ×1.2"


# --- invariants --------------------------------------------------------------------------

VOCABULARY = ["deep", "RL", "agents", "reward", "model", "learning", "tool", "über", "c"]
SEPARATORS = [" ", "\n", ", ", " (", ") ", " — ", "  ", ". "]
EXCLUDED = ["survey", "position paper", "C++", "Übersicht", "large language model"]


@st.composite
def text(draw: st.DrawFn, insert: str | None = None) -> str:
    """Vocabulary words joined by separators; `insert` (in some case) at a word boundary."""
    words = draw(st.lists(st.sampled_from(VOCABULARY), max_size=8))
    if insert is not None:
        variant = draw(st.sampled_from([insert, insert.upper(), insert.lower(), insert.title()]))
        inner = draw(st.sampled_from([" ", "\n", "  "]))
        words.insert(draw(st.integers(0, len(words))), inner.join(variant.split(" ")))
    gaps = [draw(st.sampled_from(SEPARATORS)) for _ in words]
    return "".join(word + gap for word, gap in zip(words, gaps, strict=True)).strip()


@given(st.sampled_from(EXCLUDED), st.booleans(), st.data())
def test_an_entry_containing_an_excluded_term_is_never_picked(
    term: str, in_title: bool, data: st.DataObject
) -> None:
    dirty = data.draw(text(insert=term))
    title, summary = (dirty, data.draw(text())) if in_title else (data.draw(text()), dirty)
    excluded = entry(f"RL {title}", summary, id="urn:test:excluded")
    others = [entry(f"RL {data.draw(text())}", id=f"urn:test:{i}") for i in range(3)]
    prof = profile({"RL": 5, "agents": 1}, exclude=["nothing", term], min_score=0)
    picks = KeywordRanker().rank([*others, excluded], prof, {})
    assert {p.entry.id for p in picks} == {e.id for e in others}  # and the others all get in


@given(st.data())
def test_ranking_is_independent_of_input_order(data: st.DataObject) -> None:
    day = timedelta(days=1)
    entries = [
        entry(
            data.draw(text()),
            data.draw(text()),
            id=f"urn:test:{i}",
            feeds=data.draw(st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=2)),
            published=data.draw(st.sampled_from([None, NOW, NOW - day])),
        )
        for i in range(data.draw(st.integers(0, 8)))
    ]
    prof = profile({"RL": 2, "reward model": 1, "agents": 1}, exclude=["tool"], max_entries=3)
    weights = {"a": 1.0, "b": 2.0}
    shuffled = data.draw(st.permutations(entries))
    assert KeywordRanker().rank(shuffled, prof, weights) == KeywordRanker().rank(
        entries, prof, weights
    )
