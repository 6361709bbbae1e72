"""Profiles: terms (the term language is rank/terms.py's), followed names,
field weights and sections. The scalar keys (limits, boosts) are read by the generic table
reader from Profile's fields; what has a syntax of its own is read here."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from ..models import (
    DEFAULT_FIELD_WEIGHTS,
    FIELDS,
    Field,
    Profile,
    Sections,
    Settings,
)
from ..rank.terms import term_problem
from .tables import Reader, Spec, kind, quote

_SECTIONS: tuple[Sections, ...] = ("feed", "tag")
#: points a followed author or organisation gets when listed without a weight
FOLLOW_POINTS = 4.0

PROFILE = Spec(
    Profile,
    "profiles",
    derived=frozenset({"name"}),
    custom=frozenset(
        {
            "keywords",
            "exclude",
            "require",
            "fields",
            "authors",
            "organisations",
            "sections",
            "tags",
        }
    ),
)


class ProfileReader(Reader):
    """`[profiles.NAME]` tables → Profile."""

    def profile(self, name: str, value: object, settings: Settings) -> Profile:
        key = f"profiles.{name}"
        inherited = {"max_entries": settings.max_entries, "min_score": settings.min_score}
        scalars = self.record_fields(PROFILE, value, key, defaults=inherited)
        t = cast(Mapping[str, Any], value)
        keywords_raw = self.get(t, key, "keywords", dict, required=True)
        keywords: list[tuple[str, float]] = []
        for term, weight in keywords_raw.items():
            tkey = f"{key}.keywords.{quote(term)}"
            text = self.term(term, tkey)
            self.check(
                isinstance(weight, int | float) and not isinstance(weight, bool),
                tkey,
                f"weight must be a number, not {kind(weight)}",
            )
            number = self.finite(weight, tkey)
            self.check(number > 0, tkey, "weight must be positive")
            keywords.append((text, number))
        self.check(bool(keywords), f"{key}.keywords", "needs at least one term")
        authors = self.follows(t, key, "authors")
        organisations = self.follows(t, key, "organisations")
        sections, tags = self.sections(t, key, keywords, authors + organisations)
        return Profile(
            name=name,
            keywords=tuple(keywords),
            exclude=self.terms(t, key, "exclude"),
            require=self.terms(t, key, "require"),
            fields=self.fields(t, key),
            authors=authors,
            organisations=organisations,
            sections=sections,
            tags=tags,
            **scalars,
        )

    def sections(
        self,
        t: Mapping[str, Any],
        key: str,
        keywords: list[tuple[str, float]],
        follows: tuple[tuple[str, float], ...],
    ) -> tuple[Sections, tuple[tuple[str, tuple[str, ...]], ...]]:
        """`sections = "feed"`, or `sections = "tag"` with `[…tags]`: tag = [its terms]."""
        sections = self.get(t, key, "sections", str, "")
        choices = " or ".join(f'"{c}"' for c in _SECTIONS)
        self.check(
            sections in ("", *_SECTIONS),
            f"{key}.sections",
            f"must be {choices}, not {sections!r} (leave it out for one list)",
        )
        if "tags" not in t:
            self.check(
                sections != "tag", f"{key}.tags", 'missing: sections = "tag" needs a table of tags'
            )
            return cast(Sections, sections), ()
        self.check(
            sections == "tag", f"{key}.tags", 'only used with sections = "tag" in the same profile'
        )
        value = t["tags"]
        self.check(isinstance(value, dict), f"{key}.tags", f"must be a table, not {kind(value)}")
        known = {term for term, _ in keywords} | {name for name, _ in follows}
        tags: list[tuple[str, tuple[str, ...]]] = []
        for tag, terms in value.items():
            tkey = f"{key}.tags.{quote(tag)}"
            self.check(bool(tag.strip()), tkey, "a tag's name must not be empty")
            self.check(
                isinstance(terms, list) and bool(terms),
                tkey,
                f"must be a non-empty list of the profile's terms, not {kind(terms)}",
            )
            for i, term in enumerate(terms):
                self.check(
                    isinstance(term, str) and term.strip() in known,
                    f"{tkey}[{i}]",
                    f"{term!r} is not one of the profile's keywords, authors or organisations",
                )
            tags.append((tag.strip(), tuple(term.strip() for term in terms)))
        return "tag", tuple(tags)

    def term(self, term: object, key: str) -> str:
        """A profile term, as the term language (rank/terms.py) has it."""
        self.check(isinstance(term, str) and bool(term.strip()), key, "must be a non-empty string")
        text = cast(str, term).strip()
        problem = term_problem(text)
        self.check(problem is None, key, problem or "")
        return text

    def terms(self, t: Mapping[str, Any], key: str, name: str) -> tuple[str, ...]:
        values = self.get(t, key, name, list, [])
        return tuple(self.term(term, f"{key}.{name}[{i}]") for i, term in enumerate(values))

    def fields(self, t: Mapping[str, Any], key: str) -> tuple[tuple[Field, float], ...]:
        weights: dict[str, float] = dict(DEFAULT_FIELD_WEIGHTS)
        if "fields" in t:
            table = self.table(t["fields"], f"{key}.fields", set(FIELDS))
            for field in table:
                number: float = self.get(table, f"{key}.fields", field, (int, float), required=True)
                weights[field] = self.finite(number, f"{key}.fields.{field}")
                self.check(weights[field] >= 0, f"{key}.fields.{field}", "must not be negative")
            self.check(
                any(weights.values()), f"{key}.fields", "at least one field must count (> 0)"
            )
        return tuple((field, weights[field]) for field in FIELDS)

    def follows(self, t: Mapping[str, Any], key: str, name: str) -> tuple[tuple[str, float], ...]:
        """`["Name", …]` (each worth FOLLOW_POINTS) or `{ "Name" = points, … }`."""
        value = t.get(name, [])
        full = f"{key}.{name}"
        if isinstance(value, list):
            for i, item in enumerate(value):
                self.check(isinstance(item, str), f"{full}[{i}]", "must be a name (a string)")
            value = {item: FOLLOW_POINTS for item in value}
        self.check(
            isinstance(value, dict),
            full,
            f"must be a list of names or a table of name = points, not {kind(value)}",
        )
        follows: list[tuple[str, float]] = []
        for who, points in value.items():
            wkey = f"{full}.{quote(who)}"
            self.check(bool(who.strip()), wkey, "a name must not be empty")
            self.check(
                isinstance(points, int | float) and not isinstance(points, bool) and points > 0,
                wkey,
                "points must be a positive number",
            )
            follows.append((" ".join(who.split()), self.finite(points, wkey)))
        return tuple(follows)
