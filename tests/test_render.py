"""render and render_index: what a reader sees in the HTML, plain-text and Markdown parts."""

from __future__ import annotations

import html
import re
import unicodedata
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

import markdown
import pytest
from factories import digest, entry, profile
from hypothesis import given
from hypothesis import strategies as st
from jinja2 import nodes

from digest.errors import TemplateError
from digest.models import Entry, Pick, RenderedDigest
from digest.rank import KeywordRanker
from digest.render import environment, render, render_index, template_dir
from digest.typeset import BIDI_CONTROLS, TEXT_WIDTH

HOSTILE = ["<script>alert(1)</script>", '"><img src=x onerror=alert(1)>']
MARKDOWN_TRICKS = ["[click](http://evil) # x", "<b>hi</b>", "Learning C#"]


def pick(e: Entry) -> Pick:
    return Pick(entry=e, score=2.0, matches=())


def render_one(title: str, summary: str = "", link: str | None = None) -> RenderedDigest:
    return render(digest([pick(entry(title, summary, link=link))]))


def visible_text(markup: str) -> str:
    """What a browser shows: tags dropped, entities decoded."""
    return html.unescape(re.sub(r"<[^>]*>", "", markup))


def hrefs(markup: str) -> list[str]:
    return [html.unescape(h) for h in re.findall(r'href="([^"]*)"', markup)]


# --- HTML --------------------------------------------------------------------------------


@pytest.mark.parametrize("hostile", HOSTILE)
def test_html_escapes_feed_text(hostile: str) -> None:
    e = entry(
        hostile,
        hostile,
        feeds=[hostile],
        link="https://x.example/1",
        authors=[hostile],
        organisation=hostile,
    )
    page = render(digest([pick(e)], title=hostile, feed_problems=[hostile])).html
    assert "<script" not in page.lower()
    assert "<img" not in page.lower()
    assert hostile in visible_text(page)  # shown as text, not swallowed


@pytest.mark.parametrize(
    "link", ["javascript:alert(1)", " JavaScript:alert(1)", "data:text/html,<b>x</b>", "//evil"]
)
def test_only_http_links_are_emitted(link: str) -> None:
    rendered = render_one("A paper", link=link)
    assert hrefs(rendered.html) == []
    assert "A paper" in visible_text(rendered.html)
    assert hrefs(markdown.markdown(rendered.markdown)) == []
    assert link.strip() not in rendered.text


def test_http_link_is_emitted() -> None:
    rendered = render_one("A paper", link="https://x.example/p?a=1&b=2")
    assert hrefs(rendered.html) == ["https://x.example/p?a=1&b=2"]
    assert hrefs(markdown.markdown(rendered.markdown)) == ["https://x.example/p?a=1&b=2"]
    assert "https://x.example/p?a=1&b=2" in rendered.text


@given(st.text(), st.text())
def test_no_part_ever_contains_a_script_tag(title: str, summary: str) -> None:
    rendered = render_one(title, summary=summary)
    assert "<script" not in rendered.html.lower()
    assert "<script" not in markdown.markdown(rendered.markdown).lower()


# --- plain text --------------------------------------------------------------------------


def test_text_lines_fit_78_columns_except_unbreakable_tokens() -> None:
    long_url = "https://papers.example.org/" + "a-very-long-slug-" * 6
    words = "reinforcement learning from human feedback with reward models " * 5
    e = entry(
        "A deliberately long title about " + words,
        words * 3,
        link=long_url,
        feeds=["Daily Papers page one (RSS)", "Daily Papers page two (JSON)"],
        authors=["Ada Lovelace", "Grace Hopper", "Alan Turing", "Edsger Dijkstra"],
        organisation="The Institute for Very Long Organisation Names",
    )
    prof = profile({w: 1 for w in words.split()})
    picks = KeywordRanker(feed_weights={"Daily Papers page one (RSS)": 1.25}).rank([e], prof)
    text = render(
        digest(
            picks,
            title="Morning papers on reinforcement learning, agents and vision models",
            reader_name="Ada Lovelace",
            feed_problems=["Daily Papers page two (JSON): " + words],
        )
    ).text
    too_long = [
        line for line in text.splitlines() if len(line) > TEXT_WIDTH and len(line.split()) > 1
    ]
    assert too_long == []
    assert f"   {long_url}" in text.splitlines()  # the URL is whole, on its own line


def test_long_feed_problem_is_one_bullet() -> None:
    problem = "Daily Papers: " + "connection refused by the server " * 4
    text = render(digest(feed_problems=[problem])).text
    bullets = [line for line in text.splitlines() if line.lstrip().startswith("- ")]
    assert len(bullets) == 1


# --- Markdown ----------------------------------------------------------------------------


@pytest.mark.parametrize("trick", MARKDOWN_TRICKS)
def test_markdown_creates_no_link_or_html_from_feed_text(trick: str) -> None:
    e = entry(trick, f"{trick} {trick}", link="https://x.example/1", authors=[trick])
    page = markdown.markdown(render(digest([pick(e)], feed_problems=[trick])).markdown)
    assert hrefs(page) == ["https://x.example/1"]
    assert "<b>" not in page
    assert not re.search(r"<h[1-6]>\s*x\b", page)


@pytest.mark.parametrize("trick", MARKDOWN_TRICKS)
def test_markdown_shows_feed_text_as_written(trick: str) -> None:
    page = markdown.markdown(render_one(trick, summary=trick).markdown)
    assert visible_text(page).count(trick) == 2  # title and summary, no stray backslashes


# --- content -----------------------------------------------------------------------------


def test_empty_digest_says_nothing_new() -> None:
    rendered = render(digest([], considered=12))
    assert rendered.subject.endswith("0 new")
    assert "2026-11-23" in rendered.subject
    for part in (visible_text(rendered.html), rendered.text, rendered.markdown):
        assert "Nothing new" in part


def test_picks_appear_in_rank_order_with_why_lines() -> None:
    prof = profile({"RL": 1, "agents": 2})
    entries = [entry("RL only"), entry("Agents and RL"), entry("Agents only"), entry("Unrelated")]
    picks = KeywordRanker().rank(entries, prof)
    rendered = render(digest(picks, considered=len(entries)))
    assert rendered.subject.endswith("3 new")
    expected = ["1. Agents and RL", "2. Agents only", "3. RL only"]
    for part in (
        visible_text(rendered.html),
        rendered.text,
        visible_text(markdown.markdown(rendered.markdown)),
    ):
        positions = [part.find(line) for line in expected]
        assert -1 not in positions and positions == sorted(positions), part
        assert "Why: agents (title), RL (title)" in part  # the term that counted most first
        assert "Unrelated" not in part


def test_index_lists_pages_in_the_order_given_newest_first() -> None:
    pages = [
        (date(2026, 11, 23), "2026-11-23.md", 3),
        (date(2026, 11, 22), "2026-11-22.md", 0),
        (date(2026, 11, 20), "2026-11-20.md", 12),
    ]
    page = markdown.markdown(render_index("Papers", pages))
    assert hrefs(page) == ["2026-11-23.md", "2026-11-22.md", "2026-11-20.md"]
    assert re.findall(r"\d{4}-\d\d-\d\d</a> — (\d+) new", page) == ["3", "0", "12"]


def test_a_users_templates_override_and_render_in_the_sandbox(tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "digest.txt.j2").write_text("My digest: {{ picks|length }} picks\n")
    one = digest([pick(entry("A paper", "about things"))])
    rendered = render(one, mine)
    assert rendered.text == "My digest: 1 picks\n"
    assert "<html" in rendered.html, "templates the user lacks come from the built-in set"

    hostile = tmp_path / "hostile"
    hostile.mkdir()
    escape = "{{ ''.__class__.__mro__[1].__subclasses__() }}"
    (hostile / "digest.txt.j2").write_text(escape)
    with pytest.raises(TemplateError, match="template digest.txt.j2"):
        render(one, hostile)


def test_rows_come_from_the_templates_rendering_them(tmp_path: Path) -> None:
    """Rows are made once and shared between digests, but only by the templates that made
    them: a user's templates rendered after the built-in ones, on the same picks in the same
    process, show their own rows, and the built-in ones theirs again after."""
    edits = {
        "digest.html.j2": ("Why: {{ item.why }}", "Reason: {{ item.why }}"),
        "digest.txt.j2": ("{{ item.title|numbered(number) }}", "> {{ item.title }}"),
        "digest.md.j2": ("{{ heading }} {{ number }}.", "{{ heading }} Pick {{ number }}."),
    }
    for name, (old, new) in edits.items():
        source = (template_dir() / name).read_text()
        assert old in source, f"{name} changed: update this test"
        (tmp_path / name).write_text(source.replace(old, new))
    picks = [pick(entry("Reward models", "about reward"))]
    builtin = render(digest(picks))
    mine = render(digest(picks), tmp_path)
    assert "Reason: " in mine.html and "Why: " not in visible_text(mine.html)
    assert "> Reward models" in mine.text and "1. Reward models" not in mine.text
    assert "## Pick 1. " in mine.markdown
    assert render(digest(picks)) == builtin
    assert "Reason:" not in builtin.html and "## Pick" not in builtin.markdown


@pytest.mark.parametrize("name", ["digest.html.j2", "digest.txt.j2", "digest.md.j2"])
def test_the_built_in_row_macros_read_only_their_arguments(name: str) -> None:
    """pick_rows keeps the built-in templates' rows for every digest with the same
    layout: a row macro that read anything else (the subscriber's name, the date) would
    show one subscriber's rows to the next."""
    tree = environment().parse((template_dir() / name).read_text())
    macros = list(tree.find_all(nodes.Macro))
    assert macros, f"{name} has no row macro"
    own = {m.name for m in macros}
    for macro in macros:
        read = {n.name for n in macro.find_all(nodes.Name) if n.ctx == "load"}
        assert read <= {a.name for a in macro.args} | own, (macro.name, read)


def test_a_users_row_macro_may_read_the_whole_digest(tmp_path: Path) -> None:
    """A user's row macro may read more than its arguments: its rows are made per digest."""
    source = (template_dir() / "digest.html.j2").read_text()
    old = "Why: {{ item.why }}"
    assert old in source, "digest.html.j2 changed: update this test"
    (tmp_path / "digest.html.j2").write_text(source.replace(old, "For {{ digest.reader.name }}"))
    picks = [pick(entry("Reward models"))]
    assert "For ada" in render(digest(picks), tmp_path).html
    assert "For bob" in render(digest(picks, reader_name="bob"), tmp_path).html


def test_a_users_template_cannot_change_what_other_digests_show(tmp_path: Path) -> None:
    """Subscribers with the same picks share one layout: a template cannot alter it."""
    picks = [pick(entry("First")), pick(entry("Second"))]
    before = render(digest(picks))
    for i, attempt in enumerate(["{{ picks.pop() }}", "{{ sections[0][1].clear() }}"]):
        mine = tmp_path / str(i)
        mine.mkdir()
        (mine / "digest.md.j2").write_text(attempt)
        with pytest.raises(TemplateError, match="template digest.md.j2"):
            render(digest(picks), mine)
    assert render(digest(picks)) == before


def test_pick_rows_takes_only_a_macro(tmp_path: Path) -> None:
    """Anything else would be called outside the sandbox's checks."""
    (tmp_path / "digest.txt.j2").write_text("{{ pick_rows(lipsum, sections[0][1]) }}")
    with pytest.raises(TemplateError, match="template digest.txt.j2: .*row must be a macro"):
        render(digest([pick(entry("First"))]), tmp_path)


def test_a_users_template_may_loop_over_the_picks_itself(tmp_path: Path) -> None:
    (tmp_path / "digest.md.j2").write_text(
        "{% for section, items in sections %}{% for number, item in items %}"
        "{{ number }}: {{ item.title }} ({{ item.score }})\n{% endfor %}{% endfor %}"
    )
    picks = [Pick(entry("First"), 2.0, ()), Pick(entry("Second"), 1.25, ())]
    assert render(digest(picks), tmp_path).markdown == "1: First (2)\n2: Second (1.2)\n"


# --- sections ----------------------------------------------------------------------------


def sectioned(*picks: tuple[str, str]) -> list[Pick]:
    """(title, section) pairs in rank order."""
    return [
        Pick(entry=entry(t), score=9.0 - i, matches=(), section=s) for i, (t, s) in enumerate(picks)
    ]


def test_picks_are_grouped_under_their_sections_in_order_of_first_appearance() -> None:
    picks = sectioned(("A", "arXiv cs.CL"), ("B", "Daily Papers"), ("C", "arXiv cs.CL"), ("D", ""))
    rendered = render(digest(picks))
    expected = ["arXiv cs.CL", "1. A", "2. C", "Daily Papers", "3. B", "Other", "4. D"]
    html_page = markdown.markdown(rendered.markdown)
    for part in (visible_text(rendered.html), rendered.text, visible_text(html_page)):
        positions = [part.find(line) for line in expected]
        assert -1 not in positions and positions == sorted(positions), (positions, part)
    assert re.findall(r"<h2[^>]*>(.*?)</h2>", rendered.html) == [
        "arXiv cs.CL",
        "Daily Papers",
        "Other",
    ]
    assert re.findall(r"<h2>(.*?)</h2>", html_page) == ["arXiv cs.CL", "Daily Papers", "Other"]
    assert re.findall(r"<h3>(\d)\.", html_page) == ["1", "2", "3", "4"]
    assert "== arXiv cs.CL ==" in rendered.text.splitlines()


def test_without_sections_there_are_no_section_headings() -> None:
    rendered = render(digest(sectioned(("A", ""), ("B", ""))))
    assert "<h2" not in rendered.html
    assert "==" not in rendered.text
    page = markdown.markdown(rendered.markdown)
    assert re.findall(r"<h(\d)>", page) == ["1", "2", "2"]


@pytest.mark.parametrize("hostile", [*HOSTILE, *MARKDOWN_TRICKS, "# Heading\r\n## two"])
def test_a_section_name_is_text_in_every_format(hostile: str) -> None:
    rendered = render(digest(sectioned(("A paper", hostile))))
    assert "<script" not in rendered.html.lower() and "<img" not in rendered.html.lower()
    assert " ".join(hostile.split()) in visible_text(rendered.html)
    page = markdown.markdown(rendered.markdown)
    assert "<script" not in page.lower() and "<img" not in page and "<b>" not in page
    assert hrefs(page) == []
    assert re.findall(r"<h(\d)>", page) == ["1", "2", "3"]
    assert "\r" not in rendered.text


def test_a_picks_row_is_shared_only_where_it_would_read_the_same() -> None:
    """A pick's HTML row is rendered once and reused: by the next subscriber with the same
    picks, but never with another number, another zone's dates or another score."""
    prof = profile({"RL": 1, "agents": 2})
    entries = [entry("RL only"), entry("Agents and RL"), entry("Agents only")]
    picks = KeywordRanker().rank(entries, prof)
    first = render(digest(picks)).html
    assert render(digest(picks, reader_name="bob")).html == first.replace("ada", "bob")
    reversed_html = visible_text(render(digest(picks[::-1])).html)
    assert "1. RL only" in reversed_html and "3. Agents and RL" in reversed_html
    # 23:30 UTC is the 24th in Berlin and still the 23rd in New York
    late = replace(picks[0].entry, published=datetime(2026, 11, 23, 23, 30, tzinfo=UTC))
    berlin = digest([replace(picks[0], entry=late)])
    new_york = replace(berlin, reader=replace(berlin.reader, timezone="America/New_York"))
    assert "published 2026-11-24" in render(berlin).html
    assert "published 2026-11-23" in render(new_york).html
    rescored = digest([replace(picks[0], score=picks[0].score + 7)])
    assert f"score {round(picks[0].score + 7, 1):g}" in visible_text(render(rescored).html)


# --- hostile text: attribute lists, controls, bidi ---------------------------------------

ATTRIBUTE_LISTS = ["Title {: onclick=alert(1) }", "Title {#id .class}", "x {onclick=alert(1)}"]


@pytest.mark.parametrize("hostile", ATTRIBUTE_LISTS)
def test_markdown_attribute_lists_stay_text_for_python_markdown_extra(hostile: str) -> None:
    """MkDocs renders with `extra`/`attr_list`: `{: … }` after a heading's text would become
    its attributes. Unlinked titles, section and digest titles end headings."""
    e = entry(hostile, hostile, feeds=[hostile], authors=[hostile])
    d = digest([Pick(entry=e, score=2.0, matches=(), section=hostile)], title=hostile)
    page = markdown.markdown(render(d).markdown, extensions=["extra", "attr_list"])
    assert re.findall(r"<\w+ [^>]*>", page) == [], page
    assert html.unescape(re.sub(r"<[^>]*>", "", page)).count(hostile) >= 4


def test_controls_and_bidi_are_gone_from_every_part_and_links_still_work() -> None:
    nasty = "a\x1b[31mb\x07c\x00d\x9be\u202ef\u2066g\u200fh"
    e = entry(nasty, nasty, link=f"https://x.example/{nasty}", authors=[nasty], feeds=[nasty])
    d = digest([Pick(entry=e, score=2.0, matches=(), section=nasty)], title=nasty)
    rendered = render(d, unsubscribe_url=f"https://x.example/u\x1b{nasty}")
    for part in (rendered.subject, rendered.html, rendered.text, rendered.markdown):
        assert not re.search(f"[\x00-\x09\x0b-\x1f\x7f-\x9f{BIDI_CONTROLS}]", part)
        assert "31mbcdefgh" in part
    assert "https://x.example/a[31mbcdefgh" in hrefs(rendered.html)


def test_plain_keeps_clean_text_and_spaces_line_breaks() -> None:
    from digest.typeset import plain

    clean = "Ünïcode — 中文 עברית"
    assert plain(clean) is clean
    assert plain("a\tb\nc\x1b[0m\u202e") == "a b c[0m"


# --- the plain-text part: display width -----------------------------------------------------

ZH = (
    "强化学习是机器学习的一个领域，强调如何基于环境而行动，以取得最大化的预期利益。其灵感来源于"
    "心理学中的行为主义理论，即有机体如何在环境给予的奖励或惩罚的刺激下，逐步形成对刺激的预期。"
)
JA = (
    "大規模言語モデル（LLM）を用いた強化学習による推論能力の向上について、我々は新しい手法を"
    "提案する。この手法は reinforcement learning from human feedback (RLHF) を拡張したものである。"
)
KO = (
    "강화 학습은 기계 학습의 한 영역이다. 행동 심리학에서 영감을 받았으며, "
    "어떤 환경 안에서 정의된 에이전트가 현재의 상태를 인식하여"
)


def columns(line: str) -> int:
    """Display columns, counted independently of digest.render: wide/fullwidth take 2."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in line)


@pytest.mark.parametrize("text", [ZH, JA, KO, ZH[:38]], ids=["zh", "ja", "ko", "zh-short"])
def test_cjk_text_wraps_by_display_width_at_78_columns(text: str) -> None:
    e = entry(text, f"{text} {text}", feeds=[text[:30]], authors=[text[:20]] * 3)
    rendered = render(digest([Pick(entry=e, score=2.0, matches=(), section=text)], title=text[:40]))
    lines = rendered.text.splitlines()
    wide = {line: columns(line) for line in lines if columns(line) > TEXT_WIDTH}
    assert wide == {}
    squashed = "".join(rendered.text.split())
    assert "".join(text.split()) in squashed  # nothing lost, only line breaks added
    if columns(text) + 3 > TEXT_WIDTH:
        assert max(map(columns, lines)) > TEXT_WIDTH - 6  # and lines are filled


def test_a_line_never_starts_with_closing_punctuation() -> None:
    from digest.typeset import wrap

    for width in range(20, 79):
        for line in wrap(ZH + JA, width=width).splitlines()[1:]:
            assert line[0] not in "、。，）」", (width, line)


# --- the HTML part's size: Gmail clips past 102 KB ------------------------------------------

GMAIL_CLIPS_AT = 102 * 1024


def many_picks(count: int, summary: str = "We study reward models for agents. " * 12) -> list[Pick]:
    return [
        Pick(
            entry=entry(
                f"Paper {i}: a reward model for long-horizon agents — ünïcödé",
                summary,
                link=f"https://papers.example/abs/{i}",
                authors=["Ada Lovelace", "Grace Hopper", "Alan Turing", "Edsger Dijkstra"],
            ),
            score=100.0 - i,
            matches=(),
        )
        for i in range(count)
    ]


def html_as_sent(rendered: RenderedDigest) -> tuple[bytes, str]:
    """The HTML part as compose() puts it on the wire (quoted-printable), and decoded."""
    from digest.send import compose

    message = compose(
        sender="digest@example.org",
        to_name="ada",
        to_address="ada@example.org",
        subject=rendered.subject,
        text=rendered.text,
        html=rendered.html,
        msg_id="<x@example.org>",
        now=datetime(2026, 11, 23, 7, 0, tzinfo=UTC),
    )
    part = message.get_body(preferencelist=("html",))
    assert part is not None
    raw = part.as_bytes().split(b"\n\n", 1)[1]
    return raw, str(part.get_content())  # type: ignore[attr-defined]


@pytest.mark.parametrize("count", [80, 150])
def test_a_large_html_digest_is_cut_so_its_footer_survives_gmail_clipping(count: int) -> None:
    rendered = render(digest(many_picks(count)), unsubscribe_url="https://x.example/unsubscribe")
    raw, shown = html_as_sent(rendered)
    assert len(raw) <= 90 * 1024 < GMAIL_CLIPS_AT
    assert shown.rstrip().endswith("</html>") and ">Unsubscribe</a>" in shown
    numbers = [int(n) for n in re.findall(r'class="title"[^>]*>(\d+)\. ', shown)]
    left_out = re.search(r"(\d+) more were left out", visible_text(shown))
    assert left_out is not None and numbers == list(range(1, len(numbers) + 1))
    assert len(numbers) + int(left_out[1]) == count
    assert len(numbers) >= 40  # cut to what fits, not far below it
    assert f"{count} new for ada" in visible_text(shown)
    # the text and Markdown parts keep every pick
    assert f"\n{count}. Paper {count - 1}:" in rendered.text
    assert f"## {count}. [Paper {count - 1}:" in rendered.markdown


def test_a_digest_that_fits_is_not_cut() -> None:
    rendered = render(digest(many_picks(30)))
    assert "left out" not in rendered.html
    assert len(re.findall(r'class="title"', rendered.html)) == 30


def test_html_size_is_never_below_the_quoted_printable_size() -> None:
    from digest.render import html_size

    for summary in ("plain ascii summary " * 10, "中文摘要，强化学习。" * 20, "a=b " * 50):
        rendered = render(digest(many_picks(12, summary)))
        raw, _ = html_as_sent(rendered)
        assert len(raw) <= html_size(rendered.html) <= len(raw) * 1.1
