"""Synthetic news chunks and questions, generated deterministically from a seed: each chunk is
150-200 words of fact sentences and fillers about one subject, so that each question's topic is
present in the text, as it is for a real news corpus."""

from __future__ import annotations

import random
from typing import Any

from bench.query_latency.constants import QUESTIONS, WARMUP_ROUNDS
from bench.query_latency.news_templates import (
    ATTRIBUTIONS,
    DOMAINS,
    FILLERS,
    FIRST,
    LAST,
    MONTHS,
    OUTLETS,
    SOURCES,
    WEEKDAYS,
)

TOPICS = [(d, s) for d in range(len(DOMAINS)) for s in range(len(DOMAINS[d]["subjects"]))]


def _subject(topic: int) -> tuple[dict[str, Any], dict[str, str]]:
    d, s = TOPICS[topic]
    domain = DOMAINS[d]
    subj = domain["subjects"][s]
    return domain, {"E": subj[0], "P": subj[1], "X": subj[2] if len(subj) > 2 else ""}


def _person(rng: random.Random) -> str:
    return f"{rng.choice(FIRST)} {rng.choice(LAST)}"


def _slots(rng: random.Random, fixed: dict[str, str]) -> dict[str, str]:
    money = rng.uniform(1.2, 95.0)
    unit = rng.choice(("million", "billion")) if money < 20 else "million"
    return {
        **fixed,
        "n": str(rng.randint(3, 48)), "small": str(rng.randint(2, 9)), "big": f"{rng.randint(1_200, 95_000):,}",
        "pct": str(rng.randint(5, 64)), "pct2": f"{rng.uniform(1.0, 9.9):.1f}", "money": f"${money:.1f} {unit}",
        "money2": f"${rng.randint(45, 950)}", "month": rng.choice(MONTHS), "weekday": rng.choice(WEEKDAYS),
        "year": str(rng.choice((2026, 2027))), "year2": str(rng.randint(1987, 2019)),
        "seats": str(rng.randint(50, 90)), "bp": str(rng.choice((25, 50, 75))),
        "rate": f"{rng.uniform(2.0, 6.75):.2f}", "rate2": f"{rng.uniform(1.4, 7.9):.1f}",
        "wind": str(rng.randint(85, 165)), "score": f"{rng.randint(1, 4)}-{rng.randint(0, 1)}",
        "who2": _person(rng), "outlet": rng.choice(OUTLETS),
    }


def synthetic_doc(d: int, seed: int, n_topics: int) -> dict[str, Any]:
    """Article-level metadata of synthetic document ``d`` (topic = d mod topics)."""
    rng = random.Random(f"{seed}:doc:{d}")
    topic = d % n_topics
    domain, subj = _subject(topic)
    who = _person(rng)
    title = rng.choice(domain["titles"]).format(**_slots(rng, {**subj, "who": who}))
    return {"topic": topic, "who": who, "title": title, "source_id": rng.choice(SOURCES),
            "days_ago": rng.uniform(0, 365), "author": _person(rng), "tag": domain["key"]}


def synthetic_text(d: int, chunk_index: int, seed: int, doc: dict[str, Any]) -> str:
    rng = random.Random(f"{seed}:chunk:{d}:{chunk_index}")
    domain, subj = _subject(doc["topic"])
    fixed = {**subj, "who": doc["who"]}
    target = rng.randint(150, 200)
    facts = list(domain["facts"])
    fillers = list(FILLERS)
    rng.shuffle(facts)
    rng.shuffle(fillers)
    sentences: list[str] = []
    words = 0
    while words < target:
        template = facts.pop() if facts and (rng.random() < 0.75 or not fillers) else fillers.pop()
        slots = _slots(rng, fixed)
        sentence = template.format(**slots)
        if rng.random() < 0.5 and "said" not in sentence:  # attributions: news rarely repeats a sentence verbatim
            sentence = f"{sentence.rstrip('.')}, {rng.choice(ATTRIBUTIONS).format(**slots)}."
        sentence = sentence[0].upper() + sentence[1:]
        if words >= 150 and words + len(sentence.split()) > 205:
            break
        sentences.append(sentence)
        words += len(sentence.split())
    paragraphs, i = [], 0
    while i < len(sentences):  # paragraphs of 2-4 sentences, as news is written
        k = rng.randint(2, 4)
        paragraphs.append(" ".join(sentences[i:i + k]))
        i += k
    return "\n\n".join(paragraphs)


def synthetic_questions(seed: int) -> tuple[list[str], list[str]]:
    """~50 measured questions (one or two per topic) and 20 different warm-up questions."""
    measured, spare = [], []
    for topic in range(len(TOPICS)):
        domain, subj = _subject(topic)
        qs = [q.format(**subj) for q in domain["questions"]]
        first = topic % len(qs)
        measured.append(qs[first])
        spare += [q for j, q in enumerate(qs) if j != first]
    rng = random.Random(f"{seed}:questions")
    rng.shuffle(spare)
    extra = QUESTIONS - len(measured)
    measured += spare[:max(0, extra)]
    return measured[:QUESTIONS], spare[max(0, extra):max(0, extra) + WARMUP_ROUNDS]
