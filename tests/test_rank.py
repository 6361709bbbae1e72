"""KeywordRanker, score and why: which entries a profile picks, in what order, and why."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import timedelta

import pytest
from factories import NOW, entry, profile
from hypothesis import given
from hypothesis import strategies as st

from digest import rank
from digest.models import Boost, Entry, Match, Pick, Profile
from digest.rank import (
    Collection,
    KeywordRanker,
    breakdown,
    compile_term,
    score,
    stem,
    why,
)


def picked(
    entries: Sequence[Entry], prof: Profile, weights: Mapping[str, float] | None = None
) -> list[str]:
    return [p.entry.title for p in KeywordRanker(feed_weights=weights).rank(entries, prof)]


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


def test_words_and_phrases_ignore_case() -> None:
    prof = profile({"Reinforcement Learning": 1, "Rlhf": 1})
    entries = [entry("reinforcement learning"), entry("RLHF at scale"), entry("rlhf"), entry("RL")]
    assert set(picked(entries, prof)) == {"reinforcement learning", "RLHF at scale", "rlhf"}


def test_an_all_caps_term_of_two_to_six_letters_matches_only_in_capitals() -> None:
    prof = profile({"RL": 1, "DPO": 1})
    entries = [
        entry("Deep RL"),
        entry("Beyond DPO"),
        entry("rl is not RL"),  # matches: the capitals are there too
        entry("Rl and dpo, lowercase"),
        entry("The RLHF recipe"),  # a different acronym
        entry("A URL"),
    ]
    assert set(picked(entries, prof)) == {"Deep RL", "Beyond DPO", "rl is not RL"}


def test_an_acronym_also_matches_its_plural() -> None:
    assert picked([entry("Small LLMs"), entry("LLMS shouting")], profile({"LLM": 1})) == [
        "Small LLMs"
    ]


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


def test_why_lists_each_term_with_its_fields_the_weightiest_first() -> None:
    prof = profile({"RLHF": 1, "reward model": 2, "reinforcement learning": 3})
    e = entry("A reward model for reinforcement learning", "We study reinforcement learning.")
    pick = score(e, prof, {})
    assert pick is not None
    assert why(pick) == "reinforcement learning (title + summary), reward model (title)"


def test_why_counts_repeated_mentions_and_keeps_to_four_terms() -> None:
    prof = profile({w: 1 for w in ["alpha", "beta", "gamma", "delta", "epsilon", "zeta"]})
    e = entry("alpha beta gamma delta epsilon zeta", "alpha, alpha and alpha")
    pick = score(e, prof, {})
    assert pick is not None
    assert why(pick) == (
        "alpha (title + summary ×3), beta (title), gamma (title), delta (title), 2 more"
    )


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
    picks = KeywordRanker().rank([*others, excluded], prof)
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
    ranker = KeywordRanker(feed_weights=weights)
    assert ranker.rank(shuffled, prof) == KeywordRanker(feed_weights=weights).rank(entries, prof)


# --- the profile language ------------------------------------------------------------------

NO_STATS = Collection(0, {}, {})


def test_inflections_match_without_listing_them() -> None:
    prof = profile({"reward model": 1, "learning": 1})
    entries = [
        entry("Reward models, calibrated"),
        entry("Modelling the reward"),  # not the phrase
        entry("What agents learned"),
        entry("A learner"),  # a different word
        entry("Rewarding modelled behaviour"),
    ]
    assert set(picked(entries, prof)) == {
        "Reward models, calibrated",
        "What agents learned",
        "Rewarding modelled behaviour",
    }


def test_the_light_stemmer_joins_inflections_and_keeps_words_apart() -> None:
    same = [
        ["model", "models", "modelling", "modeling", "modeled"],
        ["learn", "learns", "learned", "learning"],
        ["study", "studies", "studied", "studying"],
        ["image", "images", "imaging"],
        ["embed", "embedding", "embeddings", "embedded"],
        ["bias", "biases"],
        ["class", "classes"],
        ["llm", "llms"],
    ]
    for words in same:
        assert len({stem(w) for w in words}) == 1, words
    apart = ["generative", "generation", "general", "string", "thing", "news", "analysis"]
    assert len({stem(w) for w in apart}) == len(apart)


def test_a_prefix_matches_every_word_starting_so() -> None:
    prof = profile({"transformer*": 1, "graph neur*": 1})
    entries = [
        entry("Transformers all the way"),
        entry("Transformer-based parsing"),
        entry("Vision transformer"),
        entry("Retransformers"),  # not at the start of the word
        entry("Transform the data"),
        entry("Graph neural networks"),
        entry("A graph of neurons"),
    ]
    assert set(picked(entries, prof)) == {
        "Transformers all the way",
        "Transformer-based parsing",
        "Vision transformer",
        "Graph neural networks",
    }


def test_a_phrase_does_not_match_across_punctuation() -> None:
    prof = profile({"reward model": 1})
    assert picked(
        [entry("reward, model"), entry("reward (model)"), entry("reward model")], prof
    ) == ["reward model"]


def test_terms_with_symbols_match_as_written() -> None:
    prof = profile({"C++": 1, "GPT-4": 1})
    entries = [entry("Fast C++ kernels"), entry("Plain C"), entry("GPT-4 evals"), entry("GPT 4")]
    assert set(picked(entries, prof)) == {"Fast C++ kernels", "GPT-4 evals"}


def test_exclude_matches_inflections_too() -> None:
    prof = profile({"RL": 1}, exclude=["survey"])
    assert picked([entry("RL surveys"), entry("RL surveyed"), entry("RL at last")], prof) == [
        "RL at last"
    ]


def test_require_leaves_out_entries_without_any_required_term() -> None:
    prof = profile({"agent": 2, "benchmark": 1}, require=["agent", "RL"])
    entries = [
        entry("A benchmark"),  # scores, but has no required term
        entry("An agent benchmark"),
        entry("RL benchmark"),  # a required term need not be a keyword
    ]
    assert set(picked(entries, prof)) == {"An agent benchmark", "RL benchmark"}
    ranking = KeywordRanker().ranking(entries, prof)
    (left,) = ranking.left_out
    assert left.pick.entry.title == "A benchmark"
    assert left.reason == "none of the required terms (agent, RL)"


def test_followed_authors_and_organisations_score_their_own_weight() -> None:
    prof = profile(
        {"robot": 1},
        authors={"Yann LeCun": 5},
        organisations={"NVIDIA": 3},
    )
    by_him = entry("Untitled", authors=["Ada Lovelace", "yann  lecun"])
    from_them = entry("Also untitled", organisation="NVIDIA")
    robot_by_him = entry("A robot", authors=["Yann LeCun"])
    assert points(by_him, prof) == 5
    assert points(from_them, prof) == 3
    assert points(robot_by_him, prof) == 5 + 2
    pick = score(by_him, prof)
    assert pick is not None
    assert pick.matches == (Match("Yann LeCun", "authors", 5.0, follow=True),)
    assert why(pick) == "Yann LeCun (followed)"
    # a name inside a title is not a byline
    assert picked([entry("Yann LeCun interviewed")], prof) == []


def test_field_weights_say_where_a_term_counts() -> None:
    e = entry("Robot", "a robot", authors=["Rob Robot"], categories=["Robots"])
    default = score(e, profile({"robot": 1}))
    assert default is not None
    assert [(m.field, m.points) for m in default.matches] == [
        ("title", 2.0),
        ("summary", 1.0),
        ("categories", 1.0),
    ]
    own = score(e, profile({"robot": 1}, fields={"title": 5, "summary": 0, "authors": 0.5}))
    assert own is not None
    assert [(m.field, m.points) for m in own.matches] == [
        ("title", 5.0),
        ("authors", 0.5),
        ("categories", 1.0),
    ]


def test_a_field_weighted_zero_is_not_read_for_exclude_either() -> None:
    prof = profile({"robot": 1}, exclude=["survey"], fields={"summary": 0})
    assert picked([entry("Robot", "a survey")], prof) == ["Robot"]


def test_max_per_feed_keeps_one_busy_feed_from_filling_the_digest() -> None:
    busy = [entry(f"RL busy {i}", "RL RL", feeds=["busy"]) for i in range(5)]
    quiet = [entry("RL quiet", feeds=["quiet"]), entry("RL other", feeds=["other"])]
    prof = profile({"RL": 1}, max_entries=4, max_per_feed=2)
    got = picked([*busy, *quiet], prof)
    assert len(got) == 4
    assert sum(t.startswith("RL busy") for t in got) == 2
    assert {"RL quiet", "RL other"} <= set(got)
    reasons = {
        x.pick.entry.title: x.reason
        for x in KeywordRanker().ranking([*busy, *quiet], prof).left_out
    }
    assert set(reasons.values()) == {"max_per_feed 2 reached for feed 'busy'"}


def sections_of(picks: Sequence[Pick]) -> list[tuple[str, str]]:
    return [(p.section, p.entry.title) for p in picks]


def test_sections_per_feed_put_the_best_section_first_and_keep_score_order_within() -> None:
    entries = [
        entry("RL agent planning", "RL", feeds=["arxiv"]),  # the best pick
        entry("RL", feeds=["arxiv", "blog"]),  # its first feed names its section
        entry("RL planning", "RL RL", feeds=["blog"]),
        entry("RL agent", feeds=["blog"]),
        entry("planning", feeds=["news"]),  # below max_entries: left out
    ]
    prof = profile({"RL": 1, "agent": 1, "planning": 1}, max_entries=4, sections="feed")
    plain = KeywordRanker().rank(entries, replace(prof, sections=""))
    got = KeywordRanker().rank(entries, prof)
    assert [p.entry.title for p in plain][0] == "RL agent planning"
    assert {p.entry.id for p in got} == {p.entry.id for p in plain}  # max_entries is the total
    assert sections_of(got) == [
        ("arxiv", "RL agent planning"),
        ("arxiv", "RL"),
        *[("blog", p.entry.title) for p in plain if p.entry.feeds[0] == "blog"],
    ]
    assert all(p.section == "" for p in plain)


def test_a_pick_goes_under_the_tag_whose_terms_gave_it_most_points() -> None:
    prof = profile(
        {"RLHF": 1, "reward model": 1, "agents": 1, "robot": 1},
        organisations={"NVIDIA": 5.0},
        sections="tag",
        tags=(
            ("alignment", ("RLHF", "reward model")),
            ("agents", ("agents",)),
            ("labs", ("NVIDIA",)),
        ),
    )
    entries = [
        entry("Reward models for agents", "agent"),  # alignment 2, agents 2 + 1
        entry("RLHF for an agent"),  # a tie, 2 each: the tag listed first
        entry("A robot"),  # no tag's term: Other
        entry("Robot", organisation="NVIDIA"),  # a followed organisation: 5 points
    ]
    got = {p.entry.title: p.section for p in KeywordRanker().rank(entries, prof)}
    assert got == {
        "Reward models for agents": "agents",
        "RLHF for an agent": "alignment",
        "A robot": "Other",
        "Robot": "labs",
    }


def test_repeating_a_term_saturates() -> None:
    prof = profile({"robot": 1}, fields={"title": 0})
    once = points(entry("x", "robot"), prof)
    twice = points(entry("x", "robot robot"), prof)
    ten = points(entry("x", " ".join(["robot"] * 10)), prof)
    assert once < twice < ten < 2.2 * once  # k1 + 1 is the ceiling
    assert ten < 10 * once / 4


def test_a_long_summary_does_not_win_by_length() -> None:
    filler = " ".join(f"word{i}" for i in range(200))
    short = entry("a", "robots everywhere")
    long = entry("b", f"robots everywhere {filler}")
    stats = KeywordRanker([profile({"robot": 1})]).statistics([short, long])
    ranker = KeywordRanker(collection=stats)
    prof = profile({"robot": 1})
    assert [p.entry.title for p in ranker.rank([long, short], prof)] == ["a", "b"]


def test_the_readers_weights_decide_not_how_rare_a_term_is() -> None:
    """No idf factor: a term in every entry and one in a single entry, of equal weight, give
    equal points for equal mentions (issue 18: rarity counted specificity twice)."""
    common = [entry(f"robot {i}", "robot") for i in range(19)]
    rare = entry("robot gripper", "a gripper")
    prof = profile({"robot": 1, "gripper": 1})
    ranker = KeywordRanker([prof], collection=[*common, rare])
    pick = ranker.explain(rare, prof)[1]
    by_term = {m.term: m for m in pick.matches if m.field == "title"}
    assert by_term["gripper"].points == by_term["robot"].points
    heavier = KeywordRanker([p2 := profile({"robot": 2, "gripper": 1})], collection=[*common, rare])
    weighted = {m.term: m for m in heavier.explain(rare, p2)[1].matches if m.field == "title"}
    assert weighted["robot"].points == 2 * weighted["gripper"].points
    assert ranker.collection.documents == 20
    assert ranker.collection.document_frequency[compile_term("robot")[0]] == 20


def test_upvotes_add_a_bounded_boost_only_when_asked_for() -> None:
    hot = entry("RL", upvotes=10_000)
    assert points(hot, profile({"RL": 1})) == 2  # off by default
    prof = profile({"RL": 1}, popularity=1.5)
    pick = score(hot, prof)
    assert pick is not None
    assert pick.boosts == (Boost("upvotes", 1.5, 10_000),)
    assert pick.score == 3.5
    some = points(entry("RL", upvotes=10), prof)
    assert 2 < some < 3.5
    assert points(entry("Unrelated", upvotes=10_000), prof) == 0  # a boost needs a match


def test_freshness_halves_every_day() -> None:
    prof = profile({"RL": 1}, freshness=1)
    ranker = KeywordRanker(now=NOW)
    today = ranker.explain(entry("RL a", published=NOW), prof)[1]
    yesterday = ranker.explain(entry("RL b", published=NOW - timedelta(days=1)), prof)[1]
    assert today.score == 3 and yesterday.score == 2.5
    assert "+1 new" in why(today)


# --- explanations ----------------------------------------------------------------------------


def test_ranking_says_why_each_entry_was_left_out() -> None:
    prof = profile({"RL": 1, "agent": 1}, exclude=["survey"], min_score=1.5, max_entries=1)
    entries = [
        entry("RL agent"),
        entry("RL agents, two"),
        entry("Summary only", "RL"),
        entry("RL survey"),
        entry("Nothing"),
    ]
    ranking = KeywordRanker().ranking(entries, prof)
    assert [p.entry.title for p in ranking.picks] == ["RL agent"]
    assert [(x.pick.entry.title, x.reason) for x in ranking.left_out] == [
        ("RL agents, two", "cut at max_entries 1"),
        ("RL survey", 'excluded by "survey"'),
        ("Summary only", "below min_score 1.5"),
        ("Nothing", "matched no term"),
    ]
    assert ranking.left_out[1].pick.score == 2  # what it would have scored


def test_breakdown_lists_every_contribution_and_the_total() -> None:
    prof = profile({"RL": 2, "reward model": 1}, authors={"Ada": 3}, popularity=1)
    e = entry("RL", "reward models and a reward model", authors=["Ada"], upvotes=100)
    pick = score(e, prof, {"papers": 1.5})
    assert pick is not None
    lines = breakdown(pick, prof)
    assert len(lines) == len(pick.matches) + len(pick.boosts) + 1
    assert lines[-1].strip() == f"= {pick.score:g}"
    assert any("followed author × feed 1.5" in line for line in lines)
    assert any("summary ×2" in line and "saturation 1.38" in line for line in lines)
    assert any("100 upvotes" in line for line in lines)


# --- invariants, over random profiles and entries ------------------------------------------

WORDS = ["robot", "robots", "RL", "reward", "model", "models", "learning", "survey", "agent"]


@st.composite
def profiles(draw: st.DrawFn) -> Profile:
    terms = draw(
        st.dictionaries(
            st.sampled_from([*WORDS, "reward model", "learn*", "rob*"]),
            st.sampled_from([0.5, 1.0, 2.0, 3.0]),
            min_size=1,
            max_size=5,
        )
    )
    return profile(
        terms,
        exclude=draw(st.lists(st.sampled_from(["survey", "tool", "position paper"]), max_size=2)),
        require=tuple(draw(st.lists(st.sampled_from(["robot", "RL", "agent"]), max_size=2))),
        min_score=draw(st.sampled_from([0.0, 1.0, 2.5])),
        max_entries=draw(st.integers(1, 6)),
        max_per_feed=draw(st.sampled_from([None, 1, 2])),
        popularity=draw(st.sampled_from([0.0, 1.0])),
        freshness=draw(st.sampled_from([0.0, 0.5])),
        authors=draw(st.sampled_from([{}, {"Ada": 2.0}])),
        fields=draw(st.sampled_from([{}, {"title": 1.0, "authors": 1.0}, {"summary": 0.0}])),
        name=draw(st.sampled_from(["a", "b"])),
    )


@st.composite
def entry_lists(draw: st.DrawFn) -> list[Entry]:
    day = timedelta(days=1)
    words = st.lists(st.sampled_from([*WORDS, "tool", "the", "a", ","]), max_size=12)
    return [
        entry(
            " ".join(draw(words)),
            " ".join(draw(words)),
            id=f"urn:test:{i}",
            feeds=draw(st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=2)),
            published=draw(st.sampled_from([None, NOW, NOW - day])),
            authors=draw(st.sampled_from([(), ("Ada",), ("Bob", "Ada")])),
            upvotes=draw(st.sampled_from([None, 0, 3, 250])),
        )
        for i in range(draw(st.integers(0, 10)))
    ]


@given(entry_lists(), st.lists(profiles(), min_size=1, max_size=3), st.booleans())
def test_explanations_sum_to_the_score_and_agree_with_the_fast_path(
    entries: list[Entry], profs: list[Profile], with_statistics: bool
) -> None:
    collection = entries if with_statistics else None
    ranker = KeywordRanker(profs, feed_weights={"a": 1.5, "b": 0.5}, collection=collection)
    matrix = ranker.score_matrix(entries, profs)
    for j, prof in enumerate(profs):
        ranking = ranker.ranking(entries, prof)
        everything = [*ranking.picks, *(x.pick for x in ranking.left_out)]
        assert len(everything) == len(entries)
        for pick in everything:
            parts = [m.points for m in pick.matches] + [b.points for b in pick.boosts]
            assert abs(sum(parts) - pick.score) <= 1e-6
            row = next(i for i, e in enumerate(entries) if e.id == pick.entry.id)
            assert abs(matrix[row, j] - pick.score) <= 1e-6
        for pick in ranking.picks:
            assert pick.score >= prof.min_score and pick.matches
        assert len(ranking.picks) <= prof.max_entries
        assert ranking.picks == tuple(ranker.rank(entries, prof))


@given(entry_lists(), st.lists(profiles(), min_size=1, max_size=4))
def test_ranking_many_profiles_at_once_equals_ranking_each_alone(
    entries: list[Entry], profs: list[Profile]
) -> None:
    together = KeywordRanker(profs, collection=entries).rank_many(entries, profs)
    alone = [KeywordRanker(collection=entries).rank(entries, p) for p in profs]
    # a ranker that knows fewer terms reads the same: statistics are per term
    assert [[(p.entry.id, p.score) for p in r] for r in together] == [
        [(p.entry.id, p.score) for p in r] for r in alone
    ]


@given(entry_lists(), profiles(), st.data())
def test_ranking_is_deterministic_and_independent_of_entry_and_feed_order(
    entries: list[Entry], prof: Profile, data: st.DataObject
) -> None:
    weights = {"a": 2.0, "b": 1.0, "c": 0.5}
    first = KeywordRanker(feed_weights=weights, collection=entries).rank(entries, prof)
    shuffled = data.draw(st.permutations(entries))
    reweighted = dict(data.draw(st.permutations(list(weights.items()))))
    again = KeywordRanker(feed_weights=reweighted, collection=shuffled).rank(shuffled, prof)
    assert again == first


@given(entry_lists(), profiles())
def test_no_pick_ever_contains_an_excluded_term_in_a_field_it_reads(
    entries: list[Entry], prof: Profile
) -> None:
    ranker = KeywordRanker()
    for pick in ranker.rank(entries, prof):
        excluded, _ = ranker.explain(pick.entry, prof)
        assert excluded is not None
        reads = dict(prof.fields)
        texts = [pick.entry.title] * (reads["title"] > 0) + [pick.entry.summary] * (
            reads["summary"] > 0
        )
        for term in prof.exclude:
            assert not any(term in text.lower().split() for text in texts)


def test_two_spellings_of_one_term_count_once_at_the_higher_weight() -> None:
    prof = profile({"agent": 3, "agents": 2, "Agent": 1})
    pick = score(entry("Agents"), prof)
    assert pick is not None
    assert pick.matches == (Match("agent", "title", 6.0),)


@given(
    st.lists(
        st.sampled_from(["RL", "RL agent", "agent", "robot RL", "x", "RL RL robot"]), max_size=300
    ),
    st.integers(1, 40),
    st.sampled_from([0.0, 2.0]),
)
def test_the_fast_top_of_many_rows_equals_the_exact_order_with_ties(
    titles: list[str], limit: int, min_score: float
) -> None:
    entries = [
        entry(t, id=f"urn:test:{i}", published=NOW - timedelta(hours=i % 7))
        for i, t in enumerate(titles)
    ]
    profs = [
        profile({"RL": 1, "agent": 2}, max_entries=limit, min_score=min_score, name="a"),
        profile({"robot": 1}, exclude=["agent"], max_entries=limit, name="b"),
    ]
    ranker = KeywordRanker(profs)
    fast = ranker.rank_many(entries, profs)
    for prof, picks in zip(profs, fast, strict=True):
        assert picks == list(ranker.ranking(entries, prof).picks)


@given(entry_lists(), st.lists(profiles(), min_size=1, max_size=3))
def test_sections_are_the_same_however_the_picks_are_made(
    entries: list[Entry], profs: list[Profile]
) -> None:
    tags = (("robots", ("robot", "rob*")), ("learning", ("learn*", "RL", "reward model")))
    profs = [
        replace(p, sections="tag", tags=tags) if i % 2 else replace(p, sections="feed")
        for i, p in enumerate(profs)
    ]
    ranker = KeywordRanker(profs, collection=entries)
    explained = ranker.rank_many(entries, profs)
    bare = ranker.rank_many(entries, profs, explained=False)
    for prof, picks, scores_only in zip(profs, explained, bare, strict=True):
        assert sections_of(picks) == sections_of(scores_only)
        assert picks == list(ranker.ranking(entries, prof).picks)
        # grouped: a section, once left, never comes back
        seen = [
            s for i, (s, _) in enumerate(sections_of(picks)) if i == 0 or picks[i - 1].section != s
        ]
        assert len(seen) == len(set(seen))
        assert all(p.section for p in picks)


def test_helper_processes_rank_exactly_as_one_process(monkeypatch: pytest.MonkeyPatch) -> None:
    # 11 profiles: four blocks, three helpers; 294 entries: five batches to read, by four
    monkeypatch.setattr(rank.keyword, "PROFILE_BLOCK", 3)
    monkeypatch.setattr(rank.match, "READ_BATCH", 60)
    words = ["robot", "reward model", "RL", "agents", "diffusion", "survey", "vision"]
    entries = [
        entry(
            f"{a} and {b} study {i}",
            f"We train {b} with {a}; {c} follows.",
            id=f"urn:test:{i}",
            published=NOW - timedelta(hours=i % 5),
            feeds=("a", "b")[i % 2 :],
            authors=["Ada Lovelace"] if i % 3 == 0 else [],
        )
        for i, (a, b, c) in enumerate(itertools.product(words, repeat=3))
        if a != b
    ]
    profs = [
        profile(
            {words[i % 7]: 1 + i % 3, words[(i + 2) % 7]: 2, "learn*": 0.5},
            exclude=["survey"] if i % 4 == 0 else [],
            max_entries=5 + i,
            min_score=1.0,
            max_per_feed=3 if i % 5 == 0 else None,
            authors={"Ada Lovelace": 1.5} if i % 2 else {},
            sections=("", "feed")[i % 2],
            name=f"p{i}",
        )
        for i in range(11)
    ]
    for explained in (True, False):
        alone = KeywordRanker(profs, collection=entries, workers=1)
        helped = KeywordRanker(profs, collection=entries, workers=4)
        expected = alone.rank_many(entries, profs, explained=explained)
        assert helped.rank_many(entries, profs, explained=explained) == expected
        assert (alone.workers_used, helped.workers_used) == (1, 4)
        assert helped.collection == alone.collection
        assert all(expected) and any(p.matches for p in expected[1]) == explained
