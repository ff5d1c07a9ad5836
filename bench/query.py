#!/usr/bin/env python
"""Query-latency benchmark: raw Weaviate hybrid and raw query embedding vs. the app's /v1/search and
/v1/ask over HTTP, at several collection sizes, in one run.

    .venv/bin/python bench/query.py [--sizes 10000,50000] [--queries 200] [--corpus PATH] [--json]

What it does, on a private weaviate-server in a temporary NEWSRAG_HOME (always stopped at the end):

1. For each size N it builds a collection of N chunks (the schema of ``newsrag.ingest.pipeline.chunk_properties``:
   ~150-200 words of news-like text, titles, 6 source ids, dates spread over the past year, 3 chunks
   per article) with PRECOMPUTED vectors. Embedding 50k chunks for real would take ~25 minutes on a
   2-core machine, so vectors are derived cheaply but realistically:

   * a *pool* of ~1,000 chunk texts (the first ~1,000 chunks of the collection) is embedded once,
     for real, with the local all-MiniLM-L6-v2 (``embedding_text(title, text)``, as ingestion does);
     those chunks get their real vector;
   * every other chunk is about the same topic as one pool chunk (synthetic text: same topic and
     chunk position; ``--corpus``: a lightly varied copy of a real chunk) and gets that pool
     vector plus gaussian noise (sigma ``--noise`` per dimension, 0.02 by default, i.e. a cosine of
     ~0.93 to its parent and ~0.87 between siblings), L2-normalized. The vector space therefore has
     MiniLM's real geometry (topic clusters, anisotropy), with ~N/1000 near neighbours per pool chunk.

   Objects are written with ``WeaviateStore.upsert`` in batches of 1,000 (insert throughput reported).
   Text is synthetic by default (12 news domains x 4 subjects, generated deterministically from
   ``--seed``); ``--corpus PATH`` (JSONL / globs, e.g. ``../shared/data/realtimeqa/*_gcs.jsonl``)
   takes real article text instead, and RealTimeQA questions from the sibling ``*_qa.jsonl`` files.
2. ~50 distinct questions about topics present in the text (plus 20 other warm-up questions).
   Query embeddings are REAL: the app embeds each query with MiniLM.
3. The app (``create_app`` + ``Services`` on this collection, extractive generator, rate limit off)
   is served by uvicorn on loopback in a background thread and called with one keep-alive
   ``httpx.Client``. After 20 warm-up rounds, ``--queries`` rounds follow; each round takes the next
   question of a seeded shuffle (every question ``queries/50`` times) and performs, in an order that
   rotates every round:
   * raw hybrid: ``store.hybrid(q, precomputed query vector, ...)`` with the app's own search settings
     (alpha, fusion, limit = candidates, query_properties): Weaviate time only;
   * raw query embedding: one MiniLM forward pass, ``embed_documents([q])`` (``LocalEmbedder.embed_query``
     may keep a query cache; the raw figure is the model cost the app pays on a cache miss);
   * ``GET /v1/search?q=...`` and ``POST /v1/ask`` (non-streaming).
   ``/v1/ask`` is reported COLD (the first time each question is asked: the extractive generator
   embeds the candidate sentences of the context; the sentence cache is emptied after the warm-up)
   and WARM (repeats: those vectors come from the generator's in-memory cache). ``/v1/search`` is
   also split by whether the request ran the model on the query or found its vector cached.
   The overhead ratio is ``/v1/search p95 / (raw hybrid p95 + raw embed p95)``: what the app adds
   beyond the two calls it cannot avoid.
4. Stage profile of /v1/ask (the Answer's ``timings``, plus in-process wrappers around the app's
   embedder, the generator's sentence-vector lookup and the feedback log), whether repeated identical
   calls return identical results (a WARM ask that retrieves other chunks embeds new sentences),
   build time, peak RSS of this process (which hosts the app) and of weaviate-server, load average
   and the CPU other processes used meanwhile (the figures are only as good as the machine was
   quiet), and a digest of the query-path sources measured.
"""

from __future__ import annotations

import argparse
import glob
import json
import math
import os
import random
import re
import resource
import shutil
import socket
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

TARGET_ASK_P95_MS = 150.0  # /v1/ask p95 at TARGET_ASK_SIZE chunks
TARGET_ASK_SIZE = 50_000
TARGET_OVERHEAD = 1.3  # /v1/search p95 / (raw hybrid p95 + raw embed p95)
WARMUP_ROUNDS = 20
QUESTIONS = 50
CHUNKS_PER_DOC = 3
INSERT_BATCH = 1000
SOURCES = ("wire-global", "city-herald", "metro-times", "daily-ledger", "business-post", "regional-news")


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# -- synthetic news ------------------------------------------------------------------------------
# Each domain: subjects (E, P[, X]), title templates, fact sentences, two question templates.
DOMAINS: list[dict[str, Any]] = [
    {"key": "transit",
     "subjects": [("Harbor Line", "Portmere"), ("Crosstown Tram", "Eastfield"),
                  ("Northern Metro", "Lindale"), ("Riverside Rail Link", "Westbrook")],
     "titles": ["{E} extension in {P} faces new delay", "{P} council approves more funding for {E}",
                "Commuters in {P} still waiting for {E} opening"],
     "facts": [
         "The {E} extension in {P} is now expected to open in {month} {year}, according to {who}, the city's transport commissioner.",
         "Construction of the {E} has cost {money} so far, about {pct} percent more than the original budget.",
         "The new section of the {E} will add {n} stations and carry an estimated {big} passengers a day.",
         "{who} said tunnelling under the old market district of {P} had proved harder than engineers expected.",
         "Fares on the {E} will rise by {n} cents from {month}, the operator confirmed on {weekday}.",
         "Residents near the {E} depot in {P} have complained about night work, dust and vibration.",
         "The regional transit authority said signalling tests on the {E} would begin within {small} weeks.",
         "Ridership on existing {P} lines has recovered to {pct} percent of its level before the pandemic.",
         "Opposition councillors in {P} called for an independent review of the {E} construction contract.",
         "The contractor blamed shortages of steel and signalling equipment for the latest {E} delay."],
     "questions": ["When will the {E} extension in {P} open?", "How much has the {E} in {P} cost so far?",
                   "Why is the {E} project in {P} delayed?"]},
    {"key": "elections",
     "subjects": [("Green Alliance", "Valmont"), ("Progress Party", "Kestrel County"),
                  ("Civic Union", "Ardenne"), ("Labour Front", "Southport")],
     "titles": ["{E} claims victory in {P} election", "{P} votes: {E} leads early count",
                "Turnout rises as {P} elects a new council"],
     "facts": [
         "The {E} won {n} of the {seats} seats in the {P} election, results published on {weekday} showed.",
         "Turnout in {P} reached {pct} percent, the highest in {small} elections.",
         "{who}, who leads the {E}, promised to freeze local taxes and expand free childcare.",
         "Counting in {P} was delayed by {small} hours after a power cut at the main counting centre.",
         "The {E} campaigned on housing costs, which have risen {pct} percent in {P} since {year2}.",
         "Rival candidates in {P} conceded defeat late on {weekday} evening.",
         "Election observers reported no serious irregularities in {P}, though some polling stations opened late.",
         "{who} said the {E} would only form a coalition with parties that back the new transit plan.",
         "Postal votes made up {pct} percent of the ballots cast in {P} this year.",
         "The new {P} council will hold its first session in {month}."],
     "questions": ["How many seats did the {E} win in the {P} election?", "What was the turnout in the {P} election?",
                   "What did the {E} promise voters in {P}?"]},
    {"key": "wildfire",
     "subjects": [("Cedar Ridge fire", "Sierra Alta"), ("Pine Hollow fire", "Coldwater Valley"),
                  ("Red Canyon fire", "Mesa Grande County"), ("Dry Creek fire", "Highland Park")],
     "titles": ["{E} forces evacuations in {P}", "Firefighters gain ground on {E}", "{E} burns {big} acres near {P}"],
     "facts": [
         "The {E} has burned {big} acres near {P} and was {pct} percent contained by {weekday} morning.",
         "About {big} residents of {P} were ordered to evacuate as the {E} spread overnight.",
         "{who}, the county fire chief, said shifting winds had pushed the {E} toward the reservoir.",
         "More than {n}0 firefighters and {small} aircraft have been assigned to the {E}.",
         "Investigators believe the {E} was started by a power line brought down in high winds.",
         "The {E} has destroyed {n} homes and damaged dozens of barns and outbuildings in {P}.",
         "Air quality warnings were issued for {P} and neighbouring towns because of smoke from the {E}.",
         "Schools in {P} will stay closed until at least {weekday}, officials said.",
         "The governor declared a state of emergency in {P}, releasing {money} in relief funds.",
         "Forecasters expect cooler temperatures and light rain near {P} later in the week."],
     "questions": ["How many acres has the {E} burned?", "What caused the {E} near {P}?",
                   "How many people were evacuated because of the {E}?"]},
    {"key": "rates",
     "subjects": [("Central Bank of Norland", "Norland"), ("Reserve Bank of Austral", "Austral"),
                  ("Bank of Cascadia", "Cascadia"), ("Monetary Authority of Bayshore", "Bayshore")],
     "titles": ["{E} raises interest rates again", "{E} signals more tightening as {P} inflation persists",
                "Markets react to {E} rate decision"],
     "facts": [
         "The {E} raised its benchmark interest rate by {bp} basis points to {rate} percent on {weekday}.",
         "Inflation in {P} slowed to {rate2} percent in {month}, still above the {E}'s two percent target.",
         "{who}, the governor of the {E}, said further increases could not be ruled out.",
         "Economists polled before the decision had expected the {E} to hold rates steady.",
         "The {P} currency rose {pct2} percent against the dollar after the announcement.",
         "Mortgage holders in {P} face higher repayments, with the average loan costing {money2} more a month.",
         "The {E} cut its growth forecast for {P} to {rate2} percent for next year.",
         "Two of the {small} members of the {E} rate committee voted against the increase.",
         "Unemployment in {P} remained low at {rate2} percent, giving the {E} room to tighten policy.",
         "The next rate decision of the {E} is due in {month}."],
     "questions": ["What interest rate did the {E} set?", "What is the inflation rate in {P}?",
                   "Will the {E} raise rates further?"]},
    {"key": "tech",
     "subjects": [("Nimbus Systems", "San Avelo"), ("Quantix", "Brighton Bay"), ("Helio Devices", "Marlow"),
                  ("Orbitel", "New Carver")],
     "titles": ["{E} to cut {n}00 jobs", "{E} shares slide after a weak quarter", "{E} layoffs hit {P} offices"],
     "facts": [
         "{E} will cut {n}00 jobs, about {pct2} percent of its workforce, the {P}-based company said on {weekday}.",
         "{who}, chief executive of {E}, blamed slowing demand for cloud software and higher borrowing costs.",
         "{E} reported quarterly revenue of {money}, below analysts' expectations.",
         "Shares of {E} fell {pct2} percent in after-hours trading following the announcement.",
         "The layoffs at {E} will mostly affect sales and recruiting teams in {P}.",
         "{E} said it would keep investing in artificial intelligence and in its data centre business.",
         "Departing {E} employees will receive {small} weeks of severance pay and extended health cover.",
         "{E} launched a new product line in {month} that has so far sold fewer units than planned.",
         "Union organisers at {E} in {P} said they had not been consulted about the cuts.",
         "It is the second round of job cuts at {E} in {small} years."],
     "questions": ["How many jobs will {E} cut?", "Why is {E} laying off staff?",
                   "How did {E} shares react to the layoffs?"]},
    {"key": "strikes",
     "subjects": [("Dockworkers' Union", "Port Alder"), ("Teachers' Federation", "Milbrook"),
                  ("Nurses' Association", "Grayford"), ("Rail Workers' Guild", "Elmstead")],
     "titles": ["{E} strikes in {P} over pay", "Talks fail as {E} walkout begins", "{P} braces for {E} stoppage"],
     "facts": [
         "Members of the {E} in {P} walked out on {weekday} after talks over pay broke down.",
         "The {E} is demanding a {pct} percent pay rise over {small} years to keep up with inflation.",
         "Employers in {P} have offered {pct2} percent, which {who}, the {E} general secretary, called an insult.",
         "The strike by the {E} is expected to last {n} days and could disrupt services across {P}.",
         "About {big} members of the {E} voted in the strike ballot, with {pct} percent in favour.",
         "Mediators have invited both sides to resume talks in {P} next {weekday}.",
         "{who} said the {E} was prepared to escalate if no improved offer was made by {month}.",
         "Business groups in {P} warned that the stoppage could cost the local economy {money} a week.",
         "It is the first action of its kind by the {E} since {year2}.",
         "Picket lines formed outside {n} sites in {P} early in the morning."],
     "questions": ["What pay rise is the {E} demanding?", "How long will the {E} strike in {P} last?",
                   "What have employers offered the {E}?"]},
    {"key": "health",
     "subjects": [("Veloxin", "Calder Pharmaceuticals", "severe asthma"),
                  ("Trenzafib", "Halvorsen Bio", "rheumatoid arthritis"),
                  ("Amprelix", "Northgate Therapeutics", "chronic migraine"),
                  ("Sorivane", "Medora Labs", "type 2 diabetes")],
     "titles": ["Regulators approve {E} for {X}", "{P} wins approval for {E}", "New {X} drug {E} cleared"],
     "facts": [
         "Regulators approved {E}, made by {P}, for the treatment of {X} on {weekday}.",
         "In clinical trials {E} reduced the symptoms of {X} by {pct} percent compared with a placebo.",
         "{P} expects to price {E} at around {money2} a month before insurance.",
         "{who}, a specialist in {X} who was not involved in the trials, called the results encouraging.",
         "The most common side effects of {E} were headache and nausea, reported by {pct2} percent of patients.",
         "{P} said {E} would be available in pharmacies from {month}.",
         "About {big} people are diagnosed with {X} each year, according to health officials.",
         "Shares in {P} rose {pct2} percent after the approval of {E}.",
         "The trials of {E} enrolled {n}00 patients at {small}0 hospitals over two years.",
         "Patient groups urged insurers to cover {E} as quickly as possible."],
     "questions": ["What condition is {E} approved to treat?", "How much will {E} cost?",
                   "What are the side effects of {E}?"]},
    {"key": "sports",
     "subjects": [("Kingsford Rovers", "Kingsford", "National Cup"),
                  ("Bayview Mariners", "Bayview", "League Championship"),
                  ("Ashton Falcons", "Ashton", "Continental Trophy"),
                  ("Redmoor United", "Redmoor", "Premier Shield")],
     "titles": ["{E} win the {X}", "{P} celebrates as {E} lift the {X}", "{E} end a long wait for the {X}"],
     "facts": [
         "The {E} won the {X} on {weekday}, beating their rivals {score} in front of {big} fans.",
         "{who} scored twice for the {E} in the second half to secure the {X}.",
         "It is the first {X} title for the {E} since {year2}.",
         "Thousands of supporters lined the streets of {P} for the {E} victory parade.",
         "The {E} coach, {who}, said the squad had been written off at the start of the season.",
         "The {E} finished the regular season with {n} wins and {small} defeats.",
         "Ticket prices for the {X} final reached record levels, with some seats selling for {money2}.",
         "The {E} captain was named player of the match after saving a late penalty.",
         "The win earns the {E} {money} in prize money and a place in next year's continental competition.",
         "City officials in {P} said the parade would close several central streets on {weekday}."],
     "questions": ["Who won the {X}?", "What was the score in the {X} final?",
                   "When did the {E} last win the {X}?"]},
    {"key": "housing",
     "subjects": [("Dunmore Housing Authority", "Dunmore"), ("Clearwater Homes Agency", "Clearwater"),
                  ("Fairhaven Development Board", "Fairhaven"), ("Oakridge Housing Trust", "Oakridge")],
     "titles": ["{P} rents climb as {E} unveils plan", "{E} promises {big} new homes", "Housing squeeze tightens in {P}"],
     "facts": [
         "Average rents in {P} rose {pct} percent in the past year, according to the {E}.",
         "The {E} plans to build {big} affordable homes in {P} over the next {small} years.",
         "{who}, director of the {E}, said planning rules were holding back construction.",
         "Median house prices in {P} have reached {money2} thousand, more than {small} times average earnings.",
         "The {E} will spend {money} on converting empty offices into flats.",
         "Waiting lists for social housing in {P} have grown to {big} households.",
         "Tenant groups in {P} want the {E} to cap annual rent increases at {pct2} percent.",
         "Developers said higher interest rates had made many {P} projects unviable.",
         "The first homes under the {E} programme are due to be completed in {month} {year}.",
         "The {E} also proposed a tax on homes left vacant for more than {n} months."],
     "questions": ["How much have rents risen in {P}?", "How many affordable homes will the {E} build?",
                   "What does the {E} plan to do about empty offices?"]},
    {"key": "storms",
     "subjects": [("Hurricane Delia", "the Gulf Shores coast"), ("Storm Ingrid", "the Western Isles"),
                  ("Typhoon Marlo", "the Southern Province"), ("Cyclone Tessa", "Coral Bay")],
     "titles": ["{E} slams into {P}", "{E}: deaths rise as floods spread", "Counting the cost of {E}"],
     "facts": [
         "{E} made landfall near {P} on {weekday} with sustained winds of {wind} miles per hour.",
         "At least {n} people were killed and {big} left without power as {E} moved inland.",
         "Emergency shelters near {P} took in about {big} residents overnight.",
         "{who}, the regional emergency coordinator, said the damage from {E} could exceed {money}.",
         "Forecasters said {E} would weaken to a tropical storm within {small} days.",
         "Flooding from {E} closed roads and the main airport serving {P}.",
         "Insurers estimated the losses from {E} at between {money} and twice that amount.",
         "Rescue teams used boats to reach families trapped by rising water after {E}.",
         "{E} is the strongest storm to hit {P} since {year2}.",
         "Power companies said full service might not be restored until {month}."],
     "questions": ["How many people were killed by {E}?", "What were the wind speeds when {E} made landfall?",
                   "How much damage did {E} cause?"]},
    {"key": "trade",
     "subjects": [("Pacific Rim Trade Pact", "Norland and Austral"),
                  ("Atlantic Partnership Agreement", "Cascadia and Valmont"),
                  ("Northern Corridor Treaty", "Lindale and Ardenne"),
                  ("Southern Markets Accord", "Bayshore and Southport")],
     "titles": ["{P} sign the {E}", "What the {E} means for farmers", "{E} clears a key hurdle"],
     "facts": [
         "Negotiators from {P} signed the {E} on {weekday} after {n} rounds of talks.",
         "The {E} removes tariffs on {pct} percent of the goods traded between {P}.",
         "Trade between {P} was worth {money} last year, official figures show.",
         "{who}, the lead negotiator, said the {E} would create about {big} jobs.",
         "Farmers' groups warned that the {E} would expose them to cheaper imports of beef and dairy.",
         "The {E} must still be ratified by the parliaments of {P}, which could take until {month} {year}.",
         "Car makers welcomed the {E}, which phases out import duties over {small} years.",
         "The {E} includes a chapter on digital trade and data protection.",
         "Critics said the {E} had been negotiated with too little public scrutiny.",
         "Economists estimate that the {E} will add {pct2} percent to economic output over a decade."],
     "questions": ["What share of goods does the {E} free from tariffs?", "When will the {E} be ratified?",
                   "Why are farmers worried about the {E}?"]},
    {"key": "space",
     "subjects": [("Aurora-3 mission", "Norland Space Agency"), ("Lunar Pathfinder", "Cascadia Aerospace"),
                  ("Helios probe", "the Orbital Research Institute"), ("Skyward-7 mission", "Meridian Rocket Company")],
     "titles": ["{P} launches the {E}", "The {E} heads for the Moon", "The {E} reaches orbit"],
     "facts": [
         "The {E} lifted off on {weekday} from the {P} launch site after a {small}-day delay.",
         "The {E} will spend {n} months studying the lunar south pole, {P} said.",
         "{who}, the {E} flight director, said all systems were performing normally.",
         "The {E} cost {money} to develop and carries {small} scientific instruments.",
         "A previous attempt by {P} failed in {year2} when the second stage malfunctioned.",
         "The {E} is expected to reach orbit around the Moon in {month}.",
         "Scientists hope the {E} will find evidence of water ice in permanently shadowed craters.",
         "The rocket carrying the {E} produced {big} kilonewtons of thrust at liftoff.",
         "Bad weather had postponed the {E} launch twice earlier in the week.",
         "{P} plans a crewed follow-up to the {E} before the end of the decade."],
     "questions": ["When did the {E} launch?", "What will the {E} study?", "How much did the {E} cost?"]},
]
FILLERS = [
    "The announcement came on {weekday} after weeks of speculation.",
    "{who} told reporters that the situation was being monitored closely.",
    "Officials declined to comment further, citing ongoing discussions.",
    "Local media first reported the news on {weekday}.",
    "A spokesperson said a full statement would be published by the end of {month}.",
    "Analysts said the development could have wider consequences for the region.",
    "{who} described the past {small} weeks as exceptionally difficult.",
    "The figures will be reviewed again in {month}, according to a person familiar with the matter.",
    "Similar concerns were raised {small} years ago but were never fully addressed.",
    "Reaction on social media was mixed, with many users questioning the timing.",
    "{who2}, a professor at {P} University, said the decision had been expected for some time.",
    "A survey of {n}00 residents published in {month} found opinion sharply divided.",
]
ATTRIBUTIONS = [
    "{who2} said", "according to {outlet}", "officials said on {weekday}", "a report published on {weekday} said",
    "{who2} told {outlet}", "figures released in {month} show", "people familiar with the matter said",
    "{outlet} reported on {weekday}",
]
OUTLETS = ["the Daily Ledger", "Wire Global", "the City Herald", "Metro Times", "the Business Post", "local radio"]
FIRST = ["Anna", "Maria", "James", "Sofia", "David", "Elena", "Michael", "Laura", "Daniel", "Nadia", "Peter", "Grace", "Omar", "Julia", "Thomas", "Priya", "Lucas", "Hannah", "Ahmed", "Clara", "Victor", "Emma", "Samuel", "Irene", "Mateo", "Leila", "Robert", "Chloe", "Kenji", "Amara"]
LAST = ["Okafor", "Lindqvist", "Moreau", "Castillo", "Brennan", "Nakamura", "Haddad", "Kowalski", "Fischer", "Romano", "Adeyemi", "Walsh", "Petrov", "Larsen", "Duarte", "Chen", "Novak", "Ibrahim", "Keller", "Sato", "Mendes", "Quinn", "Osei", "Varga", "Holm", "Reyes", "Bauer", "Kaur"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"]
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
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


# -- real corpus -----------------------------------------------------------------------------------
def expand(patterns: list[str]) -> list[Path]:
    files: list[Path] = []
    for pattern in patterns:
        matched = sorted(glob.glob(os.path.expanduser(pattern))) if glob.has_magic(pattern) else [pattern]
        for name in matched:
            path = Path(name).expanduser().resolve()
            if not path.is_file():
                raise SystemExit(f"bench/query.py: no such file: {name}")
            if path not in files:
                files.append(path)
    if not files:
        raise SystemExit(f"bench/query.py: nothing matches {' '.join(patterns)}")
    return files


def _split_words(text: str, lo: int = 150, hi: int = 200) -> list[str]:
    """Paragraph-preserving chunks of about lo-hi words (long paragraphs are cut by words)."""
    chunks, current, count = [], [], 0
    for para in (p.strip() for p in re.split(r"\n\s*\n|\n", text)):
        if not para:
            continue
        words = para.split()
        while len(words) > hi:  # an over-long paragraph: cut it
            take = hi - count if count < lo else 0
            if take <= 0 and current:
                chunks.append("\n\n".join(current))
                current, count = [], 0
                continue
            take = take or hi
            current.append(" ".join(words[:take]))
            chunks.append("\n\n".join(current))
            current, count, words = [], 0, words[take:]
        current.append(" ".join(words))
        count += len(words)
        if count >= lo:
            chunks.append("\n\n".join(current))
            current, count = [], 0
    if current and count >= 60:
        chunks.append("\n\n".join(current))
    return chunks


def load_corpus(files: list[Path], pool: int) -> tuple[list[dict[str, Any]], list[str], list[str]]:
    """Up to ``pool`` real chunks (at most 3 per article) and questions about their articles."""
    base: list[dict[str, Any]] = []
    seen: set[str] = set()
    url_questions: dict[str, list[str]] = {}
    questions_by_id: dict[str, str] = {}
    for path in files:
        qa = path.with_name(path.name.replace("_gcs", "_qa"))
        if qa != path and qa.is_file():
            for line in qa.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    r = json.loads(line)
                    if r.get("question_id") and r.get("question_sentence"):
                        questions_by_id[r["question_id"]] = r["question_sentence"]
    for path in files:
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            record = json.loads(line)
            nested = record.get("search_result") if isinstance(record, dict) else None
            articles = nested if isinstance(nested, list) else [record]
            question = questions_by_id.get(str(record.get("question_id"))) or record.get("question")
            for a in articles:
                if not isinstance(a, dict):
                    continue
                url = str(a.get("url") or "")
                if question and url:
                    url_questions.setdefault(url, []).append(question)
                text = str(a.get("text") or "")
                if not url or url in seen or len(text.split()) < 120 or len(base) >= pool:
                    continue
                seen.add(url)
                for k, piece in enumerate(_split_words(text)[:CHUNKS_PER_DOC]):
                    base.append({"doc": f"real-{len(seen)}", "url": url, "title": str(a.get("title") or ""),
                                 "text": piece, "chunk_index": k,
                                 "author": ", ".join(a["authors"]) if isinstance(a.get("authors"), list)
                                 else str(a.get("author") or "")})
    base = base[:pool]
    if not base:
        raise SystemExit("bench/query.py: the corpus holds no article text of 120+ words")
    in_base = {b["url"] for b in base}
    questions = list(dict.fromkeys(q for url in in_base for q in url_questions.get(url, [])))
    rng = random.Random("corpus-questions")
    rng.shuffle(questions)
    titles = list(dict.fromkeys(b["title"] for b in base if b["title"]))
    title_qs = [f"What is the latest news about {t.split(' - ')[0].split(' | ')[0].rstrip(' .')}?" for t in titles]
    measured = (questions + title_qs)[:QUESTIONS]
    warm = [q for q in (questions + title_qs)[QUESTIONS:]][:WARMUP_ROUNDS] or [f"News about {t}" for t in titles][:WARMUP_ROUNDS]
    return base, measured, warm


def vary(text: str, rng: random.Random) -> str:
    """A lightly different copy of a real chunk: one sentence dropped, a dateline added."""
    from newsrag.retrieval.generators.extractive import split_sentences

    sentences = split_sentences(text)
    if len(sentences) > 4:
        del sentences[rng.randrange(1, len(sentences))]
    city = rng.choice(("LONDON", "NEW YORK", "WASHINGTON", "SYDNEY", "TORONTO", "PARIS", "BERLIN", "TOKYO"))
    return f"{city} ({rng.choice(SOURCES)}) — " + " ".join(sentences)


# -- the collection -------------------------------------------------------------------------------
class Corpus:
    """Chunk ``i`` of the collection: properties, embedding text, and the pool chunk it derives from.
    Chunks ``0 .. pool-1`` are the pool themselves (embedded for real)."""

    def __init__(self, seed: int, pool_target: int, real: list[dict[str, Any]] | None) -> None:
        self.seed = seed
        self.real = real
        self.now = datetime.now(UTC)
        if real is None:
            step = CHUNKS_PER_DOC * len(TOPICS)  # pool docs: a whole number of topic cycles
            self.pool_docs = max(1, round(pool_target / step)) * len(TOPICS)
            self.pool = self.pool_docs * CHUNKS_PER_DOC
        else:
            self.pool = len(real)
        self._docs: dict[int, dict[str, Any]] = {}

    def parent(self, i: int) -> int:
        if self.real is not None:
            return i % self.pool
        d, c = divmod(i, CHUNKS_PER_DOC)
        return (d % self.pool_docs) * CHUNKS_PER_DOC + c  # same topic (pool_docs is a multiple of topics)

    def chunk(self, i: int) -> tuple[dict[str, Any], str]:
        from newsrag.ingest.chunking import embedding_text
        from newsrag.store.analysis import bm25_terms

        if self.real is None:
            d, c = divmod(i, CHUNKS_PER_DOC)
            doc = synthetic_doc(d, self.seed, len(TOPICS))
            text = synthetic_text(d, c, self.seed, doc)
            doc_id, title, url = f"synth-{d}", doc["title"], f"https://{doc['source_id']}.example/news/{d}"
            source_id, days, author, tags = doc["source_id"], doc["days_ago"], doc["author"], [doc["tag"]]
        else:
            rep, b = divmod(i, self.pool)
            base = self.real[b]
            rng = random.Random(f"{self.seed}:real:{i}")
            drng = random.Random(f"{self.seed}:realdoc:{base['doc']}:{rep}")
            text = base["text"] if rep == 0 else vary(base["text"], rng)
            c = base["chunk_index"]
            doc_id, title = f"{base['doc']}-{rep}", base["title"]
            url = base["url"] if rep == 0 else f"{base['url']}#copy-{rep}"
            source_id, days, author, tags = drng.choice(SOURCES), drng.uniform(0, 365), base["author"], []
        words = len(text.split())
        props = {
            "text": text, "title": title, "url": url, "source_id": source_id, "doc_id": doc_id,
            "content_hash": uuid.uuid5(uuid.NAMESPACE_URL, f"{doc_id}:{self.seed}").hex, "author": author,
            "language": "en", "tags": tags, "also_sources": [],
            "published_at": self.now - timedelta(days=days), "ingested_at": self.now,
            "chunk_index": c, "token_count": math.ceil(words * 1.3),
            # As ingestion writes it: analysed title and text (one chunk, no neighbours here).
            "context": bm25_terms(f"{title}\n\n{text}"),
        }
        return props, embedding_text(title, text)


def build_collection(store: Any, corpus: Corpus, n: int, pool_vectors: np.ndarray, vname: str,
                     noise: float) -> dict[str, Any]:
    from newsrag.core.records import StoredObject

    store.ensure_collection([vname])
    gen_s = vec_s = insert_s = 0.0
    words = 0
    for start in range(0, n, INSERT_BATCH):
        stop = min(n, start + INSERT_BATCH)
        t = time.perf_counter()
        chunks = [corpus.chunk(i) for i in range(start, stop)]
        gen_s += time.perf_counter() - t
        t = time.perf_counter()
        parents = np.array([corpus.parent(i) for i in range(start, stop)])
        vectors = pool_vectors[parents].copy()
        derived = np.arange(start, stop) >= corpus.pool  # the pool chunks keep their real vector
        if derived.any():
            rng = np.random.default_rng([corpus.seed, start])
            vectors[derived] += rng.normal(0.0, noise, size=(int(derived.sum()), vectors.shape[1])).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        objects = [StoredObject(uuid=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{store.name}:{i}")), properties=props,
                                vector=vectors[k].tolist()) for k, (i, (props, _)) in enumerate(zip(range(start, stop), chunks))]
        words += sum(len(p["text"].split()) for p, _ in chunks)
        vec_s += time.perf_counter() - t
        t = time.perf_counter()
        store.upsert(objects, vname)
        insert_s += time.perf_counter() - t
        if (stop // INSERT_BATCH) % 10 == 0 or stop == n:
            log(f"  {stop}/{n} chunks written ({stop / insert_s:.0f}/s insert)")
    return {"generate_text_s": round(gen_s, 2), "vectors_s": round(vec_s, 2), "insert_s": round(insert_s, 2),
            "insert_chunks_per_s": round(n / insert_s, 1), "mean_words_per_chunk": round(words / n, 1)}


# -- machine ---------------------------------------------------------------------------------------
def cpu_seconds(pid: int | None = None) -> float:
    if pid is None:
        ru = resource.getrusage(resource.RUSAGE_SELF)
        return ru.ru_utime + ru.ru_stime
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def system_busy_seconds() -> float:
    try:
        ticks = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError):
        return float("nan")
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)
    return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def proc_peak_rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


class Usage:
    """Wall time, our CPU, the server's CPU and other processes' CPU over a phase."""

    def __init__(self, server_pid: int) -> None:
        self.pid = server_pid
        self.t, self.cpu, self.srv = time.perf_counter(), cpu_seconds(), cpu_seconds(server_pid)
        self.busy, self.load0 = system_busy_seconds(), os.getloadavg()

    def done(self) -> dict[str, Any]:
        wall = time.perf_counter() - self.t
        ours, srv = cpu_seconds() - self.cpu, cpu_seconds(self.pid) - self.srv
        other = max(0.0, system_busy_seconds() - self.busy - ours - srv)
        return {"wall_s": round(wall, 2), "python_cpu_s": round(ours, 2), "weaviate_cpu_s": round(srv, 2),
                "other_processes_cores": round(other / wall, 2) if wall else 0.0,
                "loadavg_start": [round(x, 2) for x in self.load0],
                "loadavg_end": [round(x, 2) for x in os.getloadavg()]}


# -- the app in a thread ---------------------------------------------------------------------------
class AppServer:
    """The real app, served by uvicorn on a loopback socket in a background thread."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True,
                                       name="bench-uvicorn")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 180.0) -> None:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError("uvicorn exited during startup (see the log above)")
            if time.monotonic() > deadline:
                raise RuntimeError(f"uvicorn did not start within {timeout:.0f}s")
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        if self.thread.is_alive():
            self.thread.join(timeout=30)
        self.sock.close()


class Probe:
    """In-process wrappers on the app's objects (nothing is edited): per-request time and counts.
    A call made inside another wrapped call is recorded as ``name@outer`` (innermost outer)."""

    def __init__(self) -> None:
        self.values: dict[str, float] = {}
        self._stack: list[str] = []
        self._undo: list[Callable[[], None]] = []

    def wrap(self, owner: Any, attr: str, name: str, count: Callable[..., int] | None = None) -> None:
        original = getattr(owner, attr)

        def timed(*args: Any, **kwargs: Any) -> Any:
            key = f"{name}@{self._stack[-1]}" if self._stack else name
            self._stack.append(name)
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self._stack.pop()
                v = self.values
                v[f"{key}_ms"] = v.get(f"{key}_ms", 0.0) + (time.perf_counter() - started) * 1000
                v[f"{key}_calls"] = v.get(f"{key}_calls", 0) + 1
                if count is not None:
                    v[f"{key}_items"] = v.get(f"{key}_items", 0) + count(*args, **kwargs)

        setattr(owner, attr, timed)
        self._undo.append(lambda: owner.__dict__.pop(attr, None))

    def take(self) -> dict[str, float]:
        out, self.values = self.values, {}
        return out

    def restore(self) -> None:
        while self._undo:
            self._undo.pop()()


# -- statistics ------------------------------------------------------------------------------------
def stats(values: list[float]) -> dict[str, float]:
    if not values:
        return {"n": 0}
    a = np.asarray(values, dtype=float)
    p50, p95, p99 = np.percentile(a, [50, 95, 99])
    return {"n": int(a.size), "p50": round(float(p50), 2), "p95": round(float(p95), 2),
            "p99": round(float(p99), 2), "mean": round(float(a.mean()), 2), "max": round(float(a.max()), 2)}


def ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000


# -- one size --------------------------------------------------------------------------------------
def run_size(n: int, args: argparse.Namespace, ctx: dict[str, Any]) -> dict[str, Any]:
    import httpx

    from newsrag.app.main import create_app
    from newsrag.app.services import Services
    from newsrag.app.settings import AppSettings
    from newsrag.embeddings.local import LocalEmbedder
    from newsrag.store.weaviate import WeaviateStore

    res: dict[str, Any] = {"chunks": n}
    collection = f"BenchQuery{n}x{uuid.uuid4().hex[:8]}"
    res["collection"] = collection
    build_store = WeaviateStore(collection=collection)
    raw_store = WeaviateStore(collection=collection)
    server: AppServer | None = None
    svc: Any = None
    probe = Probe()
    try:
        # -- 1. build -------------------------------------------------------------------------------
        log(f"[{n}] building collection {collection} ...")
        usage = Usage(ctx["server_pid"])
        t = time.perf_counter()
        res["build"] = build_collection(build_store, ctx["corpus"], n, ctx["pool_vectors"], ctx["vname"], args.noise)
        res["build"]["total_s"] = round(time.perf_counter() - t, 2)
        res["build"]["count"] = build_store.count()
        res["build"]["usage"] = usage.done()
        log(f"[{n}] built in {res['build']['total_s']}s (insert {res['build']['insert_chunks_per_s']}/s), "
            f"count {res['build']['count']}")
        if res["build"]["count"] != n:
            raise RuntimeError(f"collection holds {res['build']['count']} objects, expected {n}")

        # -- 2. the app ---------------------------------------------------------------------------
        app_embedder = LocalEmbedder(ctx["emb_settings"])
        settings = AppSettings(rate_limit_per_minute=0, feedback_db=str(ctx["tmp"] / f"feedback-{n}.sqlite"),
                               generator="extractive")
        svc = Services(settings, store=WeaviateStore(collection=collection), embedder=app_embedder)
        probe.wrap(app_embedder, "embed_documents", "embed", count=lambda texts: len(texts))
        probe.wrap(svc.generator, "_cosines", "cosines")
        probe.wrap(svc.generator, "_vectors", "sentence_vectors", count=lambda texts: len(texts))
        probe.wrap(svc.feedback, "record_answer", "record_answer")
        app_hybrid: list[tuple[str, str, list[str]]] = []  # (query, query-vector digest, result ids)
        store_hybrid = svc.store.hybrid

        def recorded_hybrid(query: str, vector: Any, *a: Any, **kw: Any) -> Any:
            hits = store_hybrid(query, vector, *a, **kw)
            app_hybrid.append((query, _digest(vector), [h.uuid for h in hits]))
            return hits

        svc.store.hybrid = recorded_hybrid
        server = AppServer(create_app(settings, svc))
        server.start()
        log(f"[{n}] app on {server.url}")
        sset = svc.searcher.settings
        res["search_settings"] = {"alpha": sset.alpha, "fusion": sset.fusion, "candidates": sset.candidates,
                                  "top_k": sset.top_k, "query_properties": list(sset.query_properties),
                                  "rerank": sset.rerank}
        raw_embedder = ctx["raw_embedder"]
        vname = ctx["vname"]
        qvec = ctx["query_vectors"]
        props = list(sset.query_properties) or None

        def raw_hybrid(q: str) -> tuple[float, Any]:
            started = time.perf_counter()
            # The query BM25 sees is the analysed one, as the app's Searcher sends it.
            hits = raw_store.hybrid(svc.searcher.keyword_query(q), qvec[q], vname,
                                    limit=max(sset.candidates, sset.top_k), alpha=sset.alpha,
                                    fusion=sset.fusion, query_properties=props)
            return ms_since(started), hits

        def raw_embed(q: str) -> tuple[float, Any]:
            # the model's forward pass for one query, as embed_query did before it kept a query cache
            started = time.perf_counter()
            v = raw_embedder.embed_documents([q])[0]
            return ms_since(started), v

        with httpx.Client(base_url=server.url, timeout=300, trust_env=False) as http:
            def search(q: str) -> tuple[float, Any]:
                probe.take()
                started = time.perf_counter()
                r = http.get("/v1/search", params={"q": q})
                ms = ms_since(started)
                if r.status_code != 200:
                    raise RuntimeError(f"/v1/search {r.status_code}: {r.text[:300]}")
                return ms, {"body": r.json(), "probe": probe.take()}

            def ask(q: str) -> tuple[float, Any]:
                probe.take()
                started = time.perf_counter()
                r = http.post("/v1/ask", json={"question": q})
                ms = ms_since(started)
                if r.status_code != 200:
                    raise RuntimeError(f"/v1/ask {r.status_code}: {r.text[:300]}")
                return ms, {"body": r.json(), "probe": probe.take()}

            calls: dict[str, Callable[[str], tuple[float, Any]]] = {
                "hybrid": raw_hybrid, "embed": raw_embed, "search": search, "ask": ask}
            order = list(calls)

            # warm-up: other questions, every call
            for k in range(WARMUP_ROUNDS):
                q = ctx["warmup"][k % len(ctx["warmup"])]
                for name in order[k % 4:] + order[:k % 4]:
                    calls[name](q)
            gen = svc.generator
            if hasattr(gen, "_cache") and hasattr(gen, "_lock"):
                with gen._lock:
                    gen._cache.clear()  # cold = sentences never embedded by this app
            res["sentence_cache_cleared_after_warmup"] = hasattr(gen, "_cache")

            # measured rounds
            schedule = [ctx["questions"][k % len(ctx["questions"])] for k in range(args.queries)]
            random.Random(f"{args.seed}:schedule:{n}").shuffle(schedule)
            lat: dict[str, list[float]] = {"hybrid": [], "embed": [], "search": [], "search_embedded": [],
                                           "search_cached_vector": [], "ask_cold": [], "ask_warm": []}
            ask_rows: list[dict[str, Any]] = []
            search_rows: list[dict[str, Any]] = []
            asked: set[str] = set()
            hybrid_hits: list[int] = []
            raw_results: list[tuple[str, list[str]]] = []
            raw_vectors: list[tuple[str, str]] = []
            raw_ties: list[tuple[int, int]] = []
            app_hybrid.clear()  # measured rounds only
            usage = Usage(ctx["server_pid"])
            log(f"[{n}] measuring {args.queries} rounds x 4 calls ({len(set(schedule))} distinct questions) ...")
            for k, q in enumerate(schedule):
                for name in order[k % 4:] + order[:k % 4]:
                    ms, out = calls[name](q)
                    if name == "ask":
                        cold = q not in asked
                        asked.add(q)
                        lat["ask_cold" if cold else "ask_warm"].append(ms)
                        ask_rows.append({"q": q, "cold": cold, "client_ms": ms, "timings": out["body"]["timings"],
                                         "chunk_ids": [c["chunk_id"] for c in out["body"]["retrieval"]],
                                         "probe": out["probe"], "abstained": out["body"]["abstained"],
                                         "citations": len(out["body"]["citations"]),
                                         "retrieved": len(out["body"]["retrieval"])})
                    elif name == "search":
                        lat["search"].append(ms)
                        embedded = out["probe"].get("embed_calls", 0) > 0
                        lat["search_embedded" if embedded else "search_cached_vector"].append(ms)
                        search_rows.append({"client_ms": ms, "timings": out["body"]["timings"],
                                            "hits": len(out["body"]["hits"]), "embedded": embedded})
                    else:
                        lat[name].append(ms)
                        if name == "hybrid":
                            hybrid_hits.append(len(out))
                            raw_results.append((q, [h.uuid for h in out]))
                            scores = [round(h.score, 6) for h in out]
                            raw_ties.append((len(scores) - len(set(scores)), scores.count(scores[-1]) if scores else 0))
                        else:
                            raw_vectors.append((q, _digest(out)))
                if (k + 1) % 50 == 0:
                    log(f"[{n}]   {k + 1}/{len(schedule)} rounds")
            res["measure_usage"] = usage.done()
        res["latency_ms"] = {name: stats(v) for name, v in lat.items()}
        res["latency_ms"]["ask_all"] = stats(lat["ask_cold"] + lat["ask_warm"])
        res["determinism"] = determinism(raw_results, raw_vectors, app_hybrid)
        if raw_ties:
            res["determinism"]["raw hybrid: calls with tied fused scores / tie at the limit"] = (
                f"{sum(t > 0 for t, _ in raw_ties)}/{len(raw_ties)} / {sum(c > 1 for _, c in raw_ties)}/{len(raw_ties)}")
        res["mean_hybrid_hits"] = round(float(np.mean(hybrid_hits)), 1) if hybrid_hits else 0
        res["ask_profile"] = {"cold": profile(ask_rows, True), "warm": profile(ask_rows, False)}
        first = {r["q"]: r["chunk_ids"] for r in reversed(ask_rows)}  # the cold ask's retrieval
        warm_rows = [r for r in ask_rows if not r["cold"]]
        res["warm_asks_with_other_retrieval"] = round(
            sum(r["chunk_ids"] != first[r["q"]] for r in warm_rows) / max(1, len(warm_rows)), 3)
        res["warm_asks_with_other_retrieval_set"] = round(
            sum(set(r["chunk_ids"]) != set(first[r["q"]]) for r in warm_rows) / max(1, len(warm_rows)), 3)
        res["ask_abstained_fraction"] = round(sum(r["abstained"] for r in ask_rows) / max(1, len(ask_rows)), 3)
        res["search_profile"] = search_profile(search_rows)
        lm = res["latency_ms"]
        res["overhead_ratio"] = round(lm["search"]["p95"] / (lm["hybrid"]["p95"] + lm["embed"]["p95"]), 3)
        if lm["search_embedded"].get("n"):  # only the requests that ran the model (no query-vector cache hit)
            res["overhead_ratio_embedded_only"] = round(
                lm["search_embedded"]["p95"] / (lm["hybrid"]["p95"] + lm["embed"]["p95"]), 3)
        res["search_over_hybrid"] = round(lm["search"]["p95"] / lm["hybrid"]["p95"], 3)
    finally:
        probe.restore()
        if svc is not None:
            svc.store.__dict__.pop("hybrid", None)
        started = server is not None and server.server.started
        if server is not None:
            server.stop()  # the lifespan closes the app's store and feedback log
        if svc is not None and not started:
            svc.close()
        try:
            if build_store.exists():
                build_store.drop()
        except Exception as exc:  # noqa: BLE001 - report, keep cleaning up
            log(f"[{n}] could not drop {collection}: {exc}")
        build_store.close()
        raw_store.close()
    res["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    res["weaviate_peak_rss_mib"] = proc_peak_rss_mib(ctx["server_pid"])
    return res


def _digest(vector: Any) -> str:
    import hashlib

    return hashlib.sha1(np.asarray(vector, dtype=np.float32).tobytes()).hexdigest()


def determinism(raw_results: list[tuple[str, list[str]]], raw_vectors: list[tuple[str, str]],
                app_hybrid: list[tuple[str, str, list[str]]]) -> dict[str, Any]:
    """Do repeated identical requests return the same thing? Each repeat is compared with the first
    call for the same question. If hybrid results differ, a WARM /v1/ask meets other chunks than the
    COLD one did, and embeds their sentences again."""

    def changed(pairs: list[tuple[str, Any]]) -> tuple[int, int]:
        first: dict[str, Any] = {}
        repeats = differ = 0
        for q, value in pairs:
            if q in first:
                repeats += 1
                differ += value != first[q]
            else:
                first[q] = value
        return differ, repeats

    out: dict[str, Any] = {}
    d, n = changed(raw_results)
    out["raw hybrid, same vector: result list differs"] = f"{d}/{n}"
    d, n = changed([(q, set(ids)) for q, ids in raw_results])
    out["raw hybrid, same vector: result set differs"] = f"{d}/{n}"
    d, n = changed(raw_vectors)
    out["raw query embedding: vector differs (bitwise)"] = f"{d}/{n}"
    d, n = changed([(q, v) for q, v, _ in app_hybrid])
    out["app query vector differs (bitwise, search+ask)"] = f"{d}/{n}"
    first_vec: dict[str, str] = {}
    for q, v, _ in app_hybrid:
        first_vec.setdefault(q, v)
    same = [(q, ids) for q, v, ids in app_hybrid if v == first_vec[q]]
    d, n = changed(same)
    out["app hybrid with an identical vector: result list differs"] = f"{d}/{n}"
    return out


STAGES = ("embed", "search", "rerank", "context", "generate", "total")


def profile(rows: list[dict[str, Any]], cold: bool) -> dict[str, Any]:
    rows = [r for r in rows if r["cold"] == cold]
    if not rows:
        return {}
    out: dict[str, Any] = {"n": len(rows)}
    for stage in STAGES:
        out[stage] = stats([r["timings"].get(stage, 0.0) for r in rows])
    # inside generate (probe keys: embed@cosines = the question embedded again by the generator,
    # embed@sentence_vectors = sentences missing from its cache, sentence_vectors = lookup + embed)
    g = [r["probe"] for r in rows]
    out["generate: question embedded again"] = stats([x.get("embed@cosines_ms", 0.0) for x in g])
    out["generate: embed new sentence texts"] = stats([x.get("embed@sentence_vectors_ms", 0.0) for x in g])
    out["generate: sentence vectors, cache part"] = stats(
        [x.get("sentence_vectors@cosines_ms", 0.0) - x.get("embed@sentence_vectors_ms", 0.0) for x in g])
    out["generate: split + score + select (rest)"] = stats(
        [r["timings"].get("generate", 0.0) - r["probe"].get("cosines_ms", 0.0) for r in rows])
    out["generate: cosines (total)"] = stats([x.get("cosines_ms", 0.0) for x in g])
    out["outside Answerer (HTTP, JSON, feedback log)"] = stats(
        [r["client_ms"] - r["timings"].get("total", 0.0) for r in rows])
    out["  feedback.record_answer (sqlite commit)"] = stats([r["probe"].get("record_answer_ms", 0.0) for r in rows])
    out["client"] = stats([r["client_ms"] for r in rows])
    out["sentence texts scored per ask (incl. clause windows)"] = round(
        float(np.mean([x.get("sentence_vectors@cosines_items", 0) for x in g])), 1)
    out["sentence texts embedded per ask (cache misses)"] = round(
        float(np.mean([x.get("embed@sentence_vectors_items", 0) for x in g])), 1)
    out["asks that ran the model on the question"] = f"{sum(x.get('embed_calls', 0) > 0 for x in g)}/{len(g)}"
    out["embedder calls per ask"] = round(float(np.mean(
        [sum(v for k, v in x.items() if k.startswith("embed") and k.endswith("_calls")) for x in g])), 2)
    out["citations per answer"] = round(float(np.mean([r["citations"] for r in rows])), 2)
    out["abstained"] = round(sum(r["abstained"] for r in rows) / len(rows), 3)
    return out


def search_profile(rows: list[dict[str, Any]]) -> dict[str, Any]:
    if not rows:
        return {}
    out: dict[str, Any] = {"n": len(rows)}
    for stage in ("embed_ms", "search_ms", "rerank_ms"):
        out[stage] = stats([r["timings"].get(stage, 0.0) for r in rows])
    out["outside Searcher (HTTP, JSON, routing)"] = stats(
        [r["client_ms"] - sum(r["timings"].get(s, 0.0) for s in ("embed_ms", "search_ms", "rerank_ms")) for r in rows])
    out["client"] = stats([r["client_ms"] for r in rows])
    return out


# -- the benchmark ---------------------------------------------------------------------------------
CODE = ("app", "retrieval", "embeddings", "evaluation/feedback.py", "newsrag/core/settings.py")


def code_fingerprint() -> dict[str, Any]:
    """What was measured: a digest of the app's query-path sources and the newest change among them
    (the figures describe the code as it was when the run started)."""
    import hashlib

    root = Path(__file__).resolve().parents[1]
    files = sorted(f for c in CODE for f in ((root / c).rglob("*.py") if (root / c).is_dir() else [root / c])
                   if f.is_file())
    h = hashlib.sha256()
    newest = (0.0, "")
    for f in files:
        h.update(str(f.relative_to(root)).encode() + b"\x00" + f.read_bytes())
        newest = max(newest, (f.stat().st_mtime, str(f.relative_to(root))))
    return {"digest": h.hexdigest()[:12], "files": len(files),
            "newest_change": f"{newest[1]} at {datetime.fromtimestamp(newest[0], UTC).isoformat(timespec='seconds')}"}


def run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    home = tmp / "home"
    os.environ["NEWSRAG_HOME"] = str(home)
    for var in ("WEAVIATE_URL", "WEAVIATE_GRPC_URL", "WEAVIATE_API_KEY"):  # always the private server
        os.environ.pop(var, None)

    from newsrag.core.settings import EmbeddingSettings, LocalWeaviateSettings, PathSettings, load
    from newsrag.embeddings.base import vector_name
    from newsrag.embeddings.local import LocalEmbedder
    from newsrag.store.server import LocalWeaviate

    t_total = time.perf_counter()
    res: dict[str, Any] = {
        "code": code_fingerprint(),
        "sizes": args.sizes, "queries": args.queries, "warmup_rounds": WARMUP_ROUNDS, "seed": args.seed,
        "noise_sigma": args.noise, "cpu_count": os.cpu_count(), "loadavg_start": [round(x, 2) for x in os.getloadavg()],
        "corpus": [str(p) for p in args.corpus_files] if args.corpus_files else "synthetic",
        "targets": {"ask_p95_ms": TARGET_ASK_P95_MS, "ask_target_size": TARGET_ASK_SIZE,
                    "overhead_ratio": TARGET_OVERHEAD},
        "results": [],
    }
    if args.corpus_files:
        real, questions, warmup = load_corpus(args.corpus_files, args.pool)
        corpus = Corpus(args.seed, args.pool, real)
    else:
        questions, warmup = synthetic_questions(args.seed)
        corpus = Corpus(args.seed, args.pool, None)
    res["pool_chunks"] = corpus.pool
    res["questions"] = questions
    res["warmup_questions"] = warmup
    log(f"{len(questions)} questions, {len(warmup)} warm-up questions; pool of {corpus.pool} chunks")

    emb_settings = load(EmbeddingSettings, provider="local")
    raw_embedder = LocalEmbedder(emb_settings)
    t = time.perf_counter()
    raw_embedder.embed_query("load the model")
    res["model_load_s"] = round(time.perf_counter() - t, 2)
    vname = vector_name(raw_embedder.model_id)

    t = time.perf_counter()
    pool_texts = [corpus.chunk(i)[1] for i in range(corpus.pool)]
    log(f"embedding the pool: {len(pool_texts)} chunk texts with MiniLM (batch {emb_settings.batch_size}) ...")
    cache = None
    if args.pool_cache:
        import hashlib

        digest = hashlib.sha256("\x00".join([raw_embedder.model_id, *pool_texts]).encode()).hexdigest()[:16]
        cache = Path(args.pool_cache).expanduser() / f"bench-query-pool-{digest}.npy"
    if cache is not None and cache.is_file():
        pool_vectors = np.load(cache)
        res["pool_vectors_from_cache"] = str(cache)
    else:
        pool_vectors = np.asarray(raw_embedder.embed_documents(pool_texts), dtype=np.float32)
        if cache is not None:
            cache.parent.mkdir(parents=True, exist_ok=True)
            np.save(cache, pool_vectors)
    res["pool_embed_s"] = round(time.perf_counter() - t, 2)
    log(f"pool ready in {res['pool_embed_s']}s" + (f" (from {cache})" if "pool_vectors_from_cache" in res
                                                      else f" ({len(pool_texts) / res['pool_embed_s']:.1f} chunks/s)"))
    query_vectors = {q: np.asarray(raw_embedder.embed_documents([q])[0], dtype=np.float32).tolist()
                     for q in dict.fromkeys(questions + warmup)}

    server = LocalWeaviate(PathSettings(home=home), LocalWeaviateSettings(http_port=0, grpc_port=0,
                                                                          data_dir=home / "weaviate-data"))
    server.install()
    t = time.perf_counter()
    state = server.start()
    res["weaviate_version"] = state.version
    res["server_start_s"] = round(time.perf_counter() - t, 2)
    log(f"weaviate-server {state.version} pid {state.pid} on {state.http_url} (grpc {state.grpc_port})")
    ctx = {"server_pid": state.pid, "corpus": corpus, "pool_vectors": pool_vectors, "vname": vname,
           "emb_settings": emb_settings, "raw_embedder": raw_embedder, "query_vectors": query_vectors,
           "questions": questions, "warmup": warmup, "tmp": tmp}
    try:
        for n in args.sizes:
            res["results"].append(run_size(n, args, ctx))
            r = res["results"][-1]
            log(f"[{n}] hybrid p95 {r['latency_ms']['hybrid']['p95']} ms, embed p95 {r['latency_ms']['embed']['p95']} ms, "
                f"search p95 {r['latency_ms']['search']['p95']} ms, ask cold/warm p95 "
                f"{r['latency_ms']['ask_cold'].get('p95')}/{r['latency_ms']['ask_warm'].get('p95')} ms")
    finally:
        res["weaviate_peak_rss_mib"] = proc_peak_rss_mib(state.pid)
        server.stop()
    res["code_at_end"] = code_fingerprint()
    res["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    res["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    res["total_s"] = round(time.perf_counter() - t_total, 1)
    return res


# -- output ----------------------------------------------------------------------------------------
def _mark(ok: bool) -> str:
    return "[green]MET[/]" if ok else "[red]MISSED[/]"


def render(res: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not console.is_terminal:
        console = Console(width=160)  # piped to a file: do not squeeze the tables into 80 columns
    console.print(f"[bold]newsrag query benchmark[/] - corpus: {res['corpus'] if isinstance(res['corpus'], str) else ', '.join(res['corpus'])}; "
                  f"pool {res['pool_chunks']} chunks embedded for real, others = pool vector + N(0, {res['noise_sigma']}²) "
                  f"noise; {len(res['questions'])} questions; {res['queries']} requests per endpoint per size after "
                  f"{res['warmup_rounds']} warm-up rounds; {res['cpu_count']} CPUs; load average at start "
                  f"{res['loadavg_start']}, at end {res['loadavg_end']}; weaviate {res['weaviate_version']}")
    code, code_end = res["code"], res["code_at_end"]
    console.print(f"code measured: {code['files']} source files of {', '.join(CODE)}: digest {code['digest']}, newest change "
                  f"{code['newest_change']}" + ("" if code_end["digest"] == code["digest"] else
                                                f" [yellow](changed during the run: {code_end['digest']}, "
                                                f"{code_end['newest_change']}; modules already imported kept the old code)[/]"))
    for r in res["results"]:
        n, lm = r["chunks"], r["latency_ms"]
        at_target = n >= TARGET_ASK_SIZE
        t = Table(title=f"{n:,} chunks - latency in ms (client side, loopback)")
        for col in ("measure", "n", "p50", "p95", "p99", "mean", "max", "target"):
            t.add_column(col, justify="left" if col in ("measure", "target") else "right")

        for label, key in (("raw Weaviate hybrid (precomputed vector)", "hybrid"),
                           ("raw query embedding (MiniLM forward pass, 1 query)", "embed"),
                           ("/v1/search (HTTP)", "search"),
                           ("  /v1/search that ran the model on the query", "search_embedded"),
                           ("  /v1/search with the query vector cached by the app", "search_cached_vector"),
                           ("/v1/ask, all requests", "ask_all"),
                           ("/v1/ask COLD (first ask of each question)", "ask_cold"),
                           ("/v1/ask WARM (repeated questions)", "ask_warm")):
            st = lm[key]
            target = ""
            if key.startswith("ask") and st.get("n"):
                target = (f"p95 <= {TARGET_ASK_P95_MS:.0f} {_mark(st['p95'] <= TARGET_ASK_P95_MS)}" if at_target
                          else f"(p95 <= {TARGET_ASK_P95_MS:.0f} applies at {TARGET_ASK_SIZE:,})")
            if not st.get("n"):
                t.add_row(label, "0", "", "", "", "", "", target)
                continue
            t.add_row(label, str(st["n"]), f"{st['p50']:.1f}", f"{st['p95']:.1f}", f"{st['p99']:.1f}",
                      f"{st['mean']:.1f}", f"{st['max']:.1f}", target)
        console.print(t)

        b, mu, bu = r["build"], r["measure_usage"], r["build"]["usage"]
        s = Table(title=f"{n:,} chunks - ratios, build, machine", show_header=True)
        s.add_column("measure")
        s.add_column("value", justify="right")
        s.add_column("target", justify="left")
        s.add_row("overhead ratio: /v1/search p95 / (hybrid p95 + embed p95)", f"{r['overhead_ratio']:.3f}",
                  f"<= {TARGET_OVERHEAD} {_mark(r['overhead_ratio'] <= TARGET_OVERHEAD)}")
        if "overhead_ratio_embedded_only" in r:
            s.add_row("  same, only /v1/search requests that ran the model", f"{r['overhead_ratio_embedded_only']:.3f}",
                      f"<= {TARGET_OVERHEAD} {_mark(r['overhead_ratio_embedded_only'] <= TARGET_OVERHEAD)}")
        s.add_row("/v1/search p95 / raw hybrid p95", f"{r['search_over_hybrid']:.3f}", "(for transparency)")
        s.add_row("search settings", f"alpha {r['search_settings']['alpha']}, {r['search_settings']['fusion']}, "
                  f"limit {r['search_settings']['candidates']}, top_k {r['search_settings']['top_k']}, "
                  f"rerank {r['search_settings']['rerank']}, props {r['search_settings']['query_properties']}", "")
        s.add_row("collection build (text + vectors + insert)", f"{b['total_s']:.1f} s", "")
        s.add_row("  insert (store.upsert, batches of 1,000)", f"{b['insert_s']:.1f} s = {b['insert_chunks_per_s']:.0f} chunks/s", "")
        s.add_row("  text generation / vector derivation", f"{b['generate_text_s']:.1f} s / {b['vectors_s']:.1f} s", "")
        s.add_row("  mean words per chunk", f"{b['mean_words_per_chunk']}", "150-200")
        s.add_row("  build: CPU python / weaviate, other processes", f"{bu['python_cpu_s']:.0f} s / {bu['weaviate_cpu_s']:.0f} s, "
                  f"{bu['other_processes_cores']:.2f} cores", "")
        s.add_row("measurement wall time", f"{mu['wall_s']:.0f} s", "")
        s.add_row("measurement: CPU python (app + client) / weaviate", f"{mu['python_cpu_s']:.0f} s / {mu['weaviate_cpu_s']:.0f} s", "")
        s.add_row("measurement: other processes' CPU (avg cores busy)", f"{mu['other_processes_cores']:.2f}",
                  "~0 for clean figures" + (" [yellow]NOISY[/]" if mu["other_processes_cores"] > 0.25 else ""))
        s.add_row("measurement: load average start -> end", f"{mu['loadavg_start']} -> {mu['loadavg_end']}", "")
        s.add_row("peak RSS: python (app+model) / weaviate-server", f"{r['peak_rss_mib']:.0f} / {r['weaviate_peak_rss_mib'] or 0:.0f} MiB", "")
        s.add_row("/v1/ask abstained (share of requests)", f"{r['ask_abstained_fraction']:.2f}", "")
        for key, value in r["determinism"].items():
            s.add_row(key if "tied" in key else f"repeated identical call: {key}", value, "" if "tied" in key else "0/n")
        s.add_row("WARM asks retrieving other chunks than the COLD ask (order / set)",
                  f"{r['warm_asks_with_other_retrieval']:.2f} / {r['warm_asks_with_other_retrieval_set']:.2f}",
                  "0 (else some WARM asks embed new sentences)")
        console.print(s)

        p = Table(title=f"{n:,} chunks - where /v1/ask spends its time (ms; server stages from Answer.timings)")
        p.add_column("stage")
        for col in ("COLD mean", "COLD p95", "WARM mean", "WARM p95"):
            p.add_column(col, justify="right")
        cold, warm = r["ask_profile"]["cold"], r["ask_profile"]["warm"]
        keys = [k for k in (cold or warm) if isinstance((cold or warm)[k], dict)]
        for key in keys:
            c, w = cold.get(key, {}), warm.get(key, {})
            cells = [f"{d[f]:.1f}" if d.get("n") else "" for d in (c, w) for f in ("mean", "p95")]
            p.add_row(key, *cells)
        for key in [k for k in (cold or warm) if not isinstance((cold or warm)[k], dict) and k != "n"]:
            p.add_row(key, str(cold.get(key, "")), "", str(warm.get(key, "")), "")
        console.print(p)
        sp = r["search_profile"]
        q = Table(title=f"{n:,} chunks - /v1/search stages (ms; from the response's timings)")
        q.add_column("stage")
        for col in ("mean", "p95"):
            q.add_column(col, justify="right")
        for key, v in sp.items():
            if isinstance(v, dict):
                q.add_row(key, f"{v['mean']:.1f}", f"{v['p95']:.1f}")
        console.print(q)

    results = res["results"]
    summary = Table(title="summary (latencies are p95 in ms unless noted)")
    summary.add_column("measure")
    for r in results:
        summary.add_column(f"{r['chunks']:,} chunks", justify="right")
    summary.add_column("target")

    def line(label: str, cell: Callable[[dict[str, Any]], str], target: str = "") -> None:
        summary.add_row(label, *(cell(r) for r in results), target)

    def p95(key: str) -> Callable[[dict[str, Any]], str]:
        return lambda r: f"{r['latency_ms'][key]['p95']:.1f}" if r["latency_ms"][key].get("n") else "-"

    def ask_cell(key: str) -> Callable[[dict[str, Any]], str]:
        def cell(r: dict[str, Any]) -> str:
            st = r["latency_ms"][key]
            if not st.get("n"):
                return "-"
            mark = f" {_mark(st['p95'] <= TARGET_ASK_P95_MS)}" if r["chunks"] >= TARGET_ASK_SIZE else ""
            return f"{st['p95']:.1f}{mark}"
        return cell

    line("collection build s (insert chunks/s)", lambda r: f"{r['build']['total_s']:.0f} ({r['build']['insert_chunks_per_s']:.0f}/s)")
    line("raw Weaviate hybrid", p95("hybrid"))
    line("raw query embedding", p95("embed"))
    line("/v1/search", p95("search"))
    line("overhead ratio = search / (hybrid + embed)", lambda r: f"{r['overhead_ratio']:.2f} {_mark(r['overhead_ratio'] <= TARGET_OVERHEAD)}",
         f"<= {TARGET_OVERHEAD}")
    line("  same, /v1/search requests that ran the model",
         lambda r: f"{r['overhead_ratio_embedded_only']:.2f}" if "overhead_ratio_embedded_only" in r else "-", f"<= {TARGET_OVERHEAD}")
    line("/v1/search / raw hybrid", lambda r: f"{r['search_over_hybrid']:.2f}")
    line("/v1/ask, all requests", ask_cell("ask_all"), f"<= {TARGET_ASK_P95_MS:.0f} at {TARGET_ASK_SIZE:,}")
    line("/v1/ask COLD (first ask of a question)", ask_cell("ask_cold"), f"<= {TARGET_ASK_P95_MS:.0f} at {TARGET_ASK_SIZE:,}")
    line("/v1/ask WARM (repeated question)", ask_cell("ask_warm"), f"<= {TARGET_ASK_P95_MS:.0f} at {TARGET_ASK_SIZE:,}")
    line("/v1/ask p50 COLD / WARM", lambda r: f"{r['latency_ms']['ask_cold'].get('p50', 0):.0f} / {r['latency_ms']['ask_warm'].get('p50', 0):.0f}")
    line("other processes' CPU while measuring (cores)", lambda r: f"{r['measure_usage']['other_processes_cores']:.2f}", "~0")
    line("load average (1 min) start -> end", lambda r: f"{r['measure_usage']['loadavg_start'][0]} -> {r['measure_usage']['loadavg_end'][0]}")
    line("peak RSS python / weaviate MiB", lambda r: f"{r['peak_rss_mib']:.0f} / {r['weaviate_peak_rss_mib'] or 0:.0f}")
    console.print(summary)
    for r in results:
        for label, prof in (("COLD", r["ask_profile"]["cold"]), ("WARM", r["ask_profile"]["warm"])):
            if not prof:
                continue
            stages = {k: prof[k]["mean"] for k in ("embed", "search", "rerank", "context", "generate")}
            outside = prof["outside Answerer (HTTP, JSON, feedback log)"]["mean"]
            total = prof["client"]["mean"]
            parts = sorted([*stages.items(), ("outside Answerer", outside)], key=lambda kv: -kv[1])
            console.print(f"{r['chunks']:,} chunks, /v1/ask {label} (n={prof['n']}): mean {total:.0f} ms = "
                          + ", ".join(f"{k} {v:.0f} ({100 * v / total:.0f}%)" for k, v in parts)
                          + f"; inside generate: {prof['generate: embed new sentence texts']['mean']:.0f} ms embedding "
                          f"{prof['sentence texts embedded per ask (cache misses)']:.0f} new sentence texts "
                          f"(of {prof['sentence texts scored per ask (incl. clause windows)']:.0f} scored), "
                          f"{prof['generate: question embedded again']['mean']:.0f} ms embedding the question a second time, "
                          f"{prof['generate: split + score + select (rest)']['mean']:.0f} ms splitting and scoring")
    console.print(f"peak RSS python {res['peak_rss_mib']:.0f} MiB, weaviate-server {res['weaviate_peak_rss_mib'] or 0:.0f} MiB; "
                  f"model load {res['model_load_s']} s, pool embedding {res['pool_embed_s']} s; total {res['total_s']:.0f} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/query.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,50000", help="collection sizes in chunks (default 10000,50000)")
    parser.add_argument("--queries", type=int, default=200, help="requests per endpoint per size (default 200)")
    parser.add_argument("--corpus", nargs="*", default=None, metavar="PATH",
                        help="JSONL files or globs of real articles for chunk text (default: synthetic news)")
    parser.add_argument("--pool", type=int, default=1000, help="chunk texts embedded for real (default ~1000)")
    parser.add_argument("--noise", type=float, default=0.02, help="gaussian noise sigma per dimension (default 0.02)")
    parser.add_argument("--pool-cache", default=None, metavar="DIR",
                        help="keep the pool's real embeddings in DIR and reuse them (default: embed every run)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--json", action="store_true", help="print one JSON line of results at the end")
    args = parser.parse_args(argv)
    try:
        args.sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    except ValueError:
        parser.error("--sizes must be comma-separated integers")
    if not args.sizes or min(args.sizes) < 1 or args.queries < 1 or args.pool < 10:
        parser.error("--sizes, --queries must be >= 1 and --pool >= 10")
    args.corpus_files = expand(args.corpus) if args.corpus else None

    tmp = Path(tempfile.mkdtemp(prefix="newsrag-bench-query-"))
    try:
        res = run(args, tmp)
    finally:
        if args.keep:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    render(res)
    if args.json:
        print(json.dumps(res, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
