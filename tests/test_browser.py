"""The example digest as a reader's browser shows it: headless Chromium at phone and desktop widths.

`digest run` renders the bundled example; Chromium opens ada's HTML email at 375 px and 800 px.
Screenshots go to test-artifacts/ for a person to look at. A copy of the page with a measuring
script injected (the delivered HTML never has one) reports the layout as JSON, read back from
the DOM with --dump-dom: no horizontal scrolling, every link http(s), no images.

Headless Chromium will not make a window narrower than 500 px, so the page is shown in an
iframe exactly `width` px wide (its own viewport: media queries and wrapping behave as in a
window that wide) inside a page that is only there to hold it; the screenshot at 375 px has
that holder's dark band on its right.
"""

from __future__ import annotations

import html
import json
import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, RunDigest
from factories import digest, entry

from digest.models import Match, Pick
from digest.render import render

NOW = "2026-11-23T07:30:00Z"
ARTIFACTS = ROOT / "test-artifacts"
#: the narrowest phones in use (320 px: iPhone SE 1st generation, small Androids), a common
#: phone, a desktop mail client
WIDTHS = (320, 375, 800)
#: the narrowest window headless Chromium makes
MIN_WINDOW = 500
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    # the page must not need the network; a request it makes fails instead of hanging
    "--host-resolver-rules=MAP * ~NOTFOUND",
)

MEASURE = """<script>
(function () {
  var root = document.documentElement, width = window.innerWidth;
  var wide = [], backgrounds = 0;
  document.querySelectorAll("body *").forEach(function (el) {
    var box = el.getBoundingClientRect();
    if (box.right > width + 0.5 && wide.length < 5) {
      wide.push(el.tagName.toLowerCase() + " right=" + Math.round(box.right) + " "
                + JSON.stringify((el.textContent || "").trim().slice(0, 60)));
    }
    if (getComputedStyle(el).backgroundImage !== "none") backgrounds++;
  });
  var result = {
    innerWidth: width,
    scrollWidth: root.scrollWidth,
    clientWidth: root.clientWidth,
    scrollHeight: root.scrollHeight,
    wide: wide,
    links: Array.prototype.map.call(document.querySelectorAll("a"), function (a) {
      return {href: a.getAttribute("href"), text: a.textContent.trim().slice(0, 80)};
    }),
    images: document.querySelectorAll("img, picture, image, video, object, embed, iframe").length,
    backgrounds: backgrounds
  };
  parent.postMessage(JSON.stringify(result), "*");
})();
</script>
"""

HOLDER = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>digest at {width} px</title>
<style>html, body {{ margin: 0; background: #3f3f46; }}</style></head>
<body><iframe srcdoc="{page}" style="display:block;border:0;width:{width}px;height:{height}px;"
  scrolling="no"></iframe>
<pre id="digest-measure"></pre>
<script>
addEventListener("message", function (e) {{
  document.getElementById("digest-measure").textContent = e.data;
}});
</script></body></html>
"""


def chromium() -> Path:
    """Debian's chromium; the test is skipped without it, except in CI, where it must run."""
    found = Path("/usr/bin/chromium") if Path("/usr/bin/chromium").exists() else None
    found = found or (Path(p) if (p := shutil.which("chromium")) else None)
    if found is not None:
        return found
    if os.environ.get("CI"):
        pytest.fail("CI is set but chromium is not installed (.ci/run installs it)")
    pytest.skip("chromium is not installed (/usr/bin/chromium)")


def run_chromium(browser: Path, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """One headless Chromium run with a fresh profile; its stderr is kept for failures."""
    result = subprocess.run(
        [str(browser), *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert result.returncode == 0, f"chromium failed ({result.returncode}):\n{result.stderr}"
    return result


class _MeasureReader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self._inside = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._inside = tag == "pre" and ("id", "digest-measure") in attrs

    def handle_endtag(self, tag: str) -> None:
        self._inside = False

    def handle_data(self, data: str) -> None:
        if self._inside:
            self.found.append(data)


def holder(directory: Path, page: str, width: int, height: int, name: str) -> Path:
    """A page showing `page` in an iframe `width` × `height` px."""
    path = directory / f"{name}-{width}.html"
    markup = HOLDER.format(page=html.escape(page, quote=True), width=width, height=height)
    path.write_text(markup, encoding="utf-8")
    return path


def measure(browser: Path, page: Path, width: int, work: Path) -> dict[str, Any]:
    """Layout figures of `page` at `width`, from a copy with the measuring script injected."""
    source = page.read_text(encoding="utf-8")
    assert source.count("</body>") == 1
    probe = holder(work, source.replace("</body>", MEASURE + "</body>"), width, 900, "measure")
    dom = run_chromium(
        browser,
        work / "profile-measure",
        f"--window-size={max(width, MIN_WINDOW)},900",
        "--virtual-time-budget=5000",
        "--dump-dom",
        probe.as_uri(),
    ).stdout
    reader = _MeasureReader()
    reader.feed(dom)
    assert "".join(reader.found).strip(), f"the measuring script reported nothing:\n{dom[:2000]}"
    figures: dict[str, Any] = json.loads(html.unescape("".join(reader.found)))
    return figures


def screenshot(
    browser: Path, page: Path, width: int, height: int, work: Path, *, dark: bool = False
) -> Path:
    """The whole page, as tall as it is, saved under test-artifacts/ for a person to look at;
    `dark` asks for the reader's dark mode (prefers-color-scheme: dark)."""
    ARTIFACTS.mkdir(exist_ok=True)
    name = f"{page.stem}-{width}{'-dark' if dark else ''}"
    shot = ARTIFACTS / f"{name}.png"
    shot.unlink(missing_ok=True)
    shown = holder(work, page.read_text(encoding="utf-8"), width, height, name)
    run_chromium(
        browser,
        work / f"profile-{name}",
        f"--window-size={max(width, MIN_WINDOW)},{height}",
        *(["--force-dark-mode"] if dark else []),
        f"--screenshot={shot}",
        shown.as_uri(),
    )
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return shot


@pytest.fixture
def example_html(example_dir: Path, run_digest: RunDigest) -> Path:
    """ada's HTML email from a run of the bundled example."""
    config = example_dir / "config.example.toml"
    result = run_digest("run", "--config", str(config), "--now", NOW)
    assert result.returncode == 0, result.stderr
    page = example_dir / "examples" / "out" / "2026-11-23" / "ada.html"
    assert page.exists(), result.stderr
    return page


@pytest.mark.parametrize("width", WIDTHS)
def test_example_digest_reads_well_in_chromium(
    width: int, example_html: Path, tmp_path: Path
) -> None:
    layout = read_in_chromium(example_html, width, tmp_path, dark=width == min(WIDTHS))
    assert layout["links"], "the example digest links to its papers"


@pytest.fixture
def sectioned_html(tmp_path: Path) -> Path:
    """A digest whose picks come under three sections, one named by a long feed name."""
    names = ["arXiv cs.CL", "Daily-Papers-" + "very-long-feed-name-" * 4, "arXiv cs.CL", ""]
    picks = [
        Pick(
            entry=entry(
                f"Paper {i}: a reward model for long-horizon agents",
                "We study reward models. " * 12,
                link=f"https://papers.example/{i}",
                authors=["Ada Lovelace", "Grace Hopper"],
            ),
            score=5.0 - i,
            matches=(Match("reward model", "title", 5.0 - i),),
            section=name,
        )
        for i, name in enumerate(names)
    ]
    page = tmp_path / "sectioned.html"
    page.write_text(render(digest(picks)).html, encoding="utf-8")
    return page


@pytest.mark.parametrize("width", WIDTHS)
def test_a_digest_with_sections_reads_well_in_chromium(
    width: int, sectioned_html: Path, tmp_path: Path
) -> None:
    layout = read_in_chromium(sectioned_html, width, tmp_path)
    assert len(layout["links"]) == 4


def read_in_chromium(page: Path, width: int, tmp_path: Path, dark: bool = False) -> dict[str, Any]:
    """The page's layout at this width, checked with assert_reads_well, then screenshotted
    (also in dark mode when asked) at its height within 600 to 16000 px."""
    browser = chromium()
    layout = measure(browser, page, width, tmp_path)
    assert_reads_well(layout, width)
    height = min(max(int(layout["scrollHeight"]), 600), 16000)
    screenshot(browser, page, width, height, tmp_path)
    if dark:
        screenshot(browser, page, width, height, tmp_path, dark=True)
    return layout


def assert_reads_well(layout: dict[str, Any], width: int) -> None:
    """What a reader would notice at this width: sideways scrolling, odd links, images."""
    assert layout["innerWidth"] == width, layout  # the viewport really is that narrow
    assert layout["scrollWidth"] <= layout["clientWidth"] <= layout["innerWidth"], (
        f"horizontal scrolling at {width} px: content is {layout['scrollWidth']} px wide; "
        f"widest elements: {layout['wide']}"
    )
    not_http = [link for link in layout["links"] if not _is_http(link["href"])]
    assert not_http == [], not_http
    assert layout["images"] == 0
    assert layout["backgrounds"] == 0, "no background images either"


def _is_http(href: str | None) -> bool:
    return href is not None and href.lower().startswith(("http://", "https://"))


LONG_URL = "https://papers.example/abs/" + "a-very-long-path-segment-without-any-break-" * 4 + "end"
LONG_WORD = "Supercalifragilistic" * 6


@pytest.fixture
def unbreakable_html(tmp_path: Path) -> Path:
    """A digest whose every text holds a URL or word far wider than a phone: titles, feed
    names, authors, summary, section, feed problems, the digest's title and reader's name."""
    picks = [
        Pick(
            entry=entry(
                f"{LONG_URL} {i}",
                f"See {LONG_URL} and {LONG_WORD}. " * 3,
                link=f"{LONG_URL}/{i}",
                feeds=[f"feed-{LONG_WORD}"],
                authors=[LONG_WORD, f"{LONG_WORD}-2"],
                organisation=LONG_URL,
                upvotes=12345678,
            ),
            score=5.0 - i,
            matches=(Match(LONG_WORD.lower(), "title", 5.0 - i),),
            section=f"section-{LONG_WORD}" if i else "",
        )
        for i in range(3)
    ]
    d = digest(
        picks,
        title=f"Digest-{LONG_WORD}",
        reader_name=f"reader-{LONG_WORD}",
        feed_problems=[f"{LONG_URL}: HTTP 404 {LONG_WORD}"],
    )
    page = tmp_path / "unbreakable.html"
    page.write_text(render(d, unsubscribe_url=f"{LONG_URL}/unsubscribe").html, encoding="utf-8")
    return page


@pytest.mark.parametrize("width", WIDTHS)
def test_long_urls_and_words_break_instead_of_scrolling_sideways(
    width: int, unbreakable_html: Path, tmp_path: Path
) -> None:
    """At 320 px the narrowest phones show no horizontal scrollbar: long tokens wrap
    (overflow-wrap: anywhere), tables are fluid."""
    layout = read_in_chromium(unbreakable_html, width, tmp_path)
    assert layout["scrollWidth"] <= layout["clientWidth"]
    assert len(layout["links"]) == 4  # three picks and the unsubscribe link
