"""Which supported sentence answers the question: the order and the cut of an extractive answer.

*Support* (see :mod:`.extractive`) says whether a sentence is about the question; it gates
abstention. It also rewards an article's lead sentence, which restates the topic ("Cyclon Materials
opened a $740 million battery recycling plant"), over the sentence that holds what was asked ("the
facility can process 40,000 metric tons a year"). Ranking therefore adds two signals:

* **focus**: the share of the question's *focus words* a sentence itself contains. Focus words are
  the question's content words that are not names (capitalised inside the question or in the
  article's title): what is asked about the topic ("process", "year");
* **aboutness**: the share of the question the article's title covers, and the article's retrieval
  score relative to the best (retrieval judged the whole article, not one sentence);
* **answer type**: "how many/much/long…" expects a quantity, "when…" a date or time; a sentence
  without one cannot be the answer.

After the first sentence, another is quoted only when it adds a focus word not yet covered: a
sentence that adds no support only dilutes the answer.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping

_QUANTITY_Q = re.compile(
    r"\bhow (many|much|long|far|old|big|large|often|quickly|fast|high|low|deep|tall|heavy)\b"
    r"|\bwhat (percent|percentage|share|number|amount|rate|price|fine|sum|total|size|score|margin)\b"
    r"|\bby how\b", re.IGNORECASE)
_DATE_Q = re.compile(r"^\W*when\b|\bwhat (day|date|year|month|time)\b|\bby when\b|\buntil when\b",
                     re.IGNORECASE)
_QUANTITY = re.compile(
    r"\d|\b(one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|dozens?|hundreds?|thousands?"
    r"|millions?|billions?|half|quarter|twice|double|triple)\b", re.IGNORECASE)
_DATE = re.compile(
    r"\b(1[89]|20)\d\d\b|\b(jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\b"
    r"|\b(mon|tues?|wednes|thurs?|fri|satur|sun)day\b|\b(today|tonight|tomorrow|yesterday|next|last|this)"
    r"\s+(week|month|year|spring|summer|autumn|fall|winter)\b|\b(spring|summer|autumn|fall|winter)\b"
    r"|\b\d{1,2}(:\d\d)?\s*[ap]\.?m\b|\bwithin\b|\bby the end of\b|\buntil\b", re.IGNORECASE)
_NAME = re.compile(r"(?<=\s)[A-Z][\w'’-]*")
_HOW_MANY = re.compile(r"\bhow (?:many|much)\s+(?:[a-z-]+\s+)??([a-z-]{3,})\b(?=\s+(?:do|does|did|are|is|was|were|will"
                       r"|would|can|could|has|have|had|must|should)\b)", re.IGNORECASE)
_WORD = re.compile(r"[\w$£€][\w.,'’-]*")
NOUN_WINDOW = 3  # words from a number to the noun it counts ("24 small weather satellites")

FOCUS_WEIGHT = 0.3
TITLE_WEIGHT = 0.4
RETRIEVAL_WEIGHT = 0.3
TYPE_WEIGHT = 0.1


def expected_type(question: str) -> str | None:
    """"quantity", "date" or None (no particular type expected)."""
    if _QUANTITY_Q.search(question):
        return "quantity"
    return "date" if _DATE_Q.search(question) else None


def asked_noun(question: str) -> str | None:
    """The noun a quantity question counts: "beds" in "How many beds does the hospital have?"."""
    match = _HOW_MANY.search(question)
    return match.group(1).lower() if match else None


def has_type(sentence: str, expected: str | None, noun: str | None = None,
             stem: Callable[[str], str] = str.lower) -> bool:
    """Whether the sentence holds what the question expects; a counted noun must follow a number
    closely ("212 inpatient beds", not "three years ... beds")."""
    if expected == "date":
        return bool(_DATE.search(sentence))
    if expected != "quantity":
        return True
    if noun is None:
        return bool(_QUANTITY.search(sentence))
    tokens = [t.rstrip(".,'’") for t in _WORD.findall(sentence.lower())]
    return any(stem(t) == stem(noun) and any(_QUANTITY.fullmatch(w) or _QUANTITY.match(w)
                                               for w in tokens[max(0, i - NOUN_WINDOW):i])
               for i, t in enumerate(tokens))


def focus_words(question: str, title: str, words: Callable[[str], set[str]]) -> set[str]:
    """The question's content words minus names: those capitalised inside the question or in the
    article's title (its topic). A title's other words may be the answer ("opens with 212 beds")."""
    names = words(" ".join(_NAME.findall(f" {question}") + _NAME.findall(f" {title}")))
    return words(question) - names


def title_share(question: str, title: str, words: Callable[[str], set[str]]) -> float:
    """How much of the question the article's title covers: an article *about* the subject beats
    one that mentions it in passing ("a stop on the planned Harbor Line" in a hospital story)."""
    asked = words(question)
    return len(asked & words(title)) / len(asked) if asked else 0.0


def focus_share(sentence_words: Iterable[str], focus: set[str], idf: Mapping[str, float]) -> float:
    """The IDF-weighted share of the focus words the sentence contains: a word the whole context
    repeats ("new") says less about a sentence than one only it has ("beds")."""
    total = sum(idf.get(w, 0.0) for w in focus)
    return sum(idf.get(w, 0.0) for w in focus & set(sentence_words)) / total if total else 0.0


def answer_score(support: float, share: float, about: float, retrieved: float, typed: bool) -> float:
    """``retrieved``: the article's retrieval score over the best one's (0-1), which judged the
    whole article against the question."""
    return (support + FOCUS_WEIGHT * share + TITLE_WEIGHT * about + RETRIEVAL_WEIGHT * retrieved
            + (TYPE_WEIGHT if typed else 0.0))
