"""The brand charter and the authenticity checks, pure: no I/O.

Matching is case- and accent-insensitive: texts are folded character by character (``é`` → ``e``,
``ß`` → ``ss``, invisible format characters such as soft hyphens and zero-width spaces dropped)
while remembering where each folded character came from, so a violation points at the right
position in the text the author wrote. The words of a phrase match across any run of whitespace
and punctuation ("a concurrent corp" is found in "a concurrent\ncorp", "a  concurrent-corp").
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Iterator
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field

from shared.events import CountryCode, Network

Term = Annotated[str, Field(min_length=1, max_length=200)]
URL_IN_TEXT = re.compile(r"https?://[^\s<>\"')\]]+", re.IGNORECASE)
NEAR_DUPLICATE_RATIO = 0.8
WORD = re.compile(r"[^\W_]+")  # letters and digits
SEPARATORS = r"[\W_]+"  # any run of whitespace and punctuation between a phrase's words


class Charter(BaseModel):
    """A tenant's charter, or a subsidiary's override of it (unset fields inherit)."""

    model_config = ConfigDict(extra="forbid")

    forbidden_terms: list[Term] = Field(default_factory=list, max_length=500,
                                        description="Words or phrases never allowed (case/accent-insensitive)")
    required_spellings: list[Term] = Field(default_factory=list, max_length=200,
                                           description='Exact spellings, e.g. "Ramsay Santé": any other case or '
                                                       'accents of the same words is a violation')
    max_length: dict[Network, Annotated[int, Field(ge=1, le=100_000)]] = Field(
        default_factory=dict, description="Maximum share-text length per network")
    mandatory_disclosure: Annotated[str, Field(max_length=500)] | None = Field(
        None, description='Text every share text must contain, e.g. "#employee"')
    allowed_link_domains: list[Term] | None = Field(
        None, description="Link hosts allowed (subdomains included); unset: any")
    country_disclosures: dict[CountryCode, Annotated[str, Field(max_length=500)]] = Field(
        default_factory=dict, description="Disclosure added to the post of an ambassador in that country (FTC, ASA…)")


class Violation(BaseModel):
    field: str
    position: int = Field(description="Offset of the offending text in the field (characters)")
    length: int = 0
    rule: str
    message: str


class Caution(BaseModel):
    field: str
    rule: str
    message: str


def effective(tenant: Charter | None, override: Charter | None) -> Charter:
    """The subsidiary's charter: the tenant's, with the subsidiary's additions and replacements.
    Forbidden terms and required spellings add up; the other rules are replaced when set."""
    base = tenant or Charter()
    if override is None:
        return base
    set_fields = override.model_fields_set
    return Charter(
        forbidden_terms=_unique(base.forbidden_terms + override.forbidden_terms),
        required_spellings=_unique(base.required_spellings + override.required_spellings),
        max_length={**base.max_length, **override.max_length},
        mandatory_disclosure=override.mandatory_disclosure if "mandatory_disclosure" in set_fields
        else base.mandatory_disclosure,
        allowed_link_domains=override.allowed_link_domains if override.allowed_link_domains is not None
        else base.allowed_link_domains,
        country_disclosures={**base.country_disclosures, **override.country_disclosures},
    )


def _unique(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


# --- folding -------------------------------------------------------------------------------------

def fold(text: str) -> tuple[str, list[int]]:
    """``text`` lower-cased without accents, and for each folded character its index in ``text``."""
    folded: list[str] = []
    origin: list[int] = []
    for index, char in enumerate(text):
        plain = "" if unicodedata.category(char) == "Cf" else "".join(
            c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c)).casefold()
        folded.append(plain)
        origin += [index] * len(plain)
    return "".join(folded), origin


def occurrences(text: str, phrase: str) -> Iterator[tuple[int, int]]:
    """(start, end) in ``text`` of each whole-word occurrence of ``phrase``, folded, its words
    separated by any run of whitespace and punctuation."""
    folded_text, origin = fold(text)
    folded_phrase = fold(phrase)[0].strip()
    if not folded_phrase:
        return
    words = WORD.findall(folded_phrase)
    body = SEPARATORS.join(map(re.escape, words)) if words else re.escape(folded_phrase)
    pattern = re.compile(rf"(?<!\w){body}(?!\w)")
    for match in pattern.finditer(folded_text):
        start, end = origin[match.start()], origin[match.end() - 1] + 1
        yield start, end


# --- the check -----------------------------------------------------------------------------------

def texts_of(item: dict[str, Any]) -> list[tuple[str, str]]:
    """(field, text) of every free text of an item, share texts included."""
    fields = [(name, item.get(name) or "") for name in ("title", "summary", "body")]
    fields += [(f"share_texts[{i}].text", t["text"]) for i, t in enumerate(item.get("share_texts") or [])]
    return fields


def check(item: dict[str, Any], charter: Charter) -> list[Violation]:
    """Every violation of ``charter`` by ``item``, with its field, position and rule."""
    violations: list[Violation] = []
    for field, text in texts_of(item):
        violations += _forbidden(field, text, charter.forbidden_terms)
        violations += _spelling(field, text, charter.required_spellings)
        violations += _links_in_text(field, text, charter.allowed_link_domains)
    for name in ("url", "image_url"):
        if item.get(name) and not _domain_allowed(str(item[name]), charter.allowed_link_domains):
            violations.append(Violation(field=name, position=0, length=len(str(item[name])),
                                        rule="allowed_link_domains",
                                        message=f"{urlsplit(str(item[name])).hostname} is not an allowed domain"))
    for i, share in enumerate(item.get("share_texts") or []):
        violations += _share_text(f"share_texts[{i}].text", share, charter)
    return violations


def _forbidden(field: str, text: str, terms: list[str]) -> Iterator[Violation]:
    for term in terms:
        for start, end in occurrences(text, term):
            yield Violation(field=field, position=start, length=end - start, rule="forbidden_terms",
                            message=f"{text[start:end]!r} is a forbidden term ({term!r})")


def _spelling(field: str, text: str, spellings: list[str]) -> Iterator[Violation]:
    for spelling in spellings:
        for start, end in occurrences(text, spelling):
            if text[start:end] != spelling:
                yield Violation(field=field, position=start, length=end - start, rule="required_spellings",
                                message=f"write {spelling!r}, not {text[start:end]!r}")


def _links_in_text(field: str, text: str, allowed: list[str] | None) -> Iterator[Violation]:
    for match in URL_IN_TEXT.finditer(text):
        if not _domain_allowed(match.group(), allowed):
            yield Violation(field=field, position=match.start(), length=len(match.group()),
                            rule="allowed_link_domains",
                            message=f"{urlsplit(match.group()).hostname} is not an allowed domain")


def _domain_allowed(url: str, allowed: list[str] | None) -> bool:
    if allowed is None:
        return True
    host = (urlsplit(url).hostname or "").lower().rstrip(".")
    return any(host == d.lower() or host.endswith("." + d.lower()) for d in allowed)


def _share_text(field: str, share: dict[str, Any], charter: Charter) -> Iterator[Violation]:
    text, network = share["text"], share["network"]
    limit = charter.max_length.get(network)
    if limit is not None and len(text) > limit:
        yield Violation(field=field, position=limit, length=len(text) - limit, rule="max_length",
                        message=f"{len(text)} characters, {network} allows {limit}")
    disclosure = charter.mandatory_disclosure
    if disclosure and fold(disclosure)[0] not in fold(text)[0]:
        yield Violation(field=field, position=len(text), rule="mandatory_disclosure",
                        message=f"must contain {disclosure!r}")


# --- authenticity --------------------------------------------------------------------------------

def near_duplicates(share_texts: list[dict[str, Any]], ratio: float = NEAR_DUPLICATE_RATIO) -> list[Caution]:
    """Variants of one network and language that are too alike: colleagues posting the same
    sentence get penalised by the networks."""
    warnings: list[Caution] = []
    for i, a in enumerate(share_texts):
        for j in range(i + 1, len(share_texts)):
            b = share_texts[j]
            if (a["network"], a["language"]) != (b["network"], b["language"]):
                continue
            similarity = difflib.SequenceMatcher(None, fold(a["text"])[0], fold(b["text"])[0]).ratio()
            if similarity >= ratio:
                warnings.append(Caution(
                    field=f"share_texts[{j}].text", rule="near_duplicate",
                    message=f"{similarity:.0%} alike to share_texts[{i}] ({a['network']}, {a['language']})"))
    return warnings
