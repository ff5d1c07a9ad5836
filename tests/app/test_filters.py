"""Date and list filters through the real app on the real Weaviate (#20 items 1, 2 and 5): one date
rule (a date, a naive time = UTC, a zoned time; a date-only ``until`` covers its day), and a comma
list means the same as a repeated parameter."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.integration

# The archive's museum article, published 2026-09-12T21:20Z: late on its day, so a date-only until
# read as 00:00 misses it.
MUSEUM = "https://calder-chronicle.example/2026/09/12/maritime-museum-reopens"
MUSEUM_Q = "How much did the Calder Maritime Museum's renovation cost?"


def search(client: Any, **params: Any) -> list[dict[str, Any]]:
    resp = client.get("/v1/search", params={"q": "maritime museum renovation", "top_k": 20, **params})
    assert resp.status_code == 200, resp.text
    return resp.json()["hits"]


def ask(client: Any, **body: Any) -> dict[str, Any]:
    resp = client.post("/v1/ask", json={"question": MUSEUM_Q, **body})
    assert resp.status_code == 200, resp.text
    return resp.json()


def cited_urls(answer: dict[str, Any]) -> list[str]:
    return [s["url"] for s in answer["sources"]]


def test_a_date_since_and_a_zoned_until_mix_without_a_500(make_client: Any) -> None:
    client = make_client()
    hits = search(client, since="2026-09-12", until="2026-09-12T23:59:59Z")
    assert MUSEUM in {h["url"] for h in hits}
    assert all("2026-09-12T00:00" <= h["published_at"] < "2026-09-12T23:59:59" for h in hits)
    answer = ask(client, since="2026-09-12", until="2026-09-12T23:59:59Z")
    assert cited_urls(answer) == [MUSEUM]
    zoned_since = search(client, since="2026-09-12T23:00:00+02:00", until="2026-09-12")  # 21:00Z .. day end
    assert {h["url"] for h in zoned_since} == {MUSEUM}


def test_a_date_only_until_includes_its_whole_day(make_client: Any) -> None:
    client = make_client()
    hits = search(client, until="2026-09-12")
    assert MUSEUM in {h["url"] for h in hits}
    assert all(h["published_at"] < "2026-09-13" for h in hits)
    assert MUSEUM not in {h["url"] for h in search(client, until="2026-09-11")}
    assert cited_urls(ask(client, until="2026-09-12")) == [MUSEUM]


def test_the_same_date_on_both_sides_is_that_day(make_client: Any) -> None:
    client = make_client()
    hits = search(client, since="2026-09-12", until="2026-09-12")
    assert MUSEUM in {h["url"] for h in hits}
    assert all(h["published_at"].startswith("2026-09-12") for h in hits)
    assert cited_urls(ask(client, since="2026-09-12", until="2026-09-12")) == [MUSEUM]


def test_a_naive_time_is_utc(make_client: Any) -> None:
    client = make_client()
    assert MUSEUM in {h["url"] for h in search(client, since="2026-09-12T21:00", until="2026-09-12T21:30")}
    assert MUSEUM not in {h["url"] for h in search(client, since="2026-09-12T21:21", until="2026-09-12T23:00")}


def test_a_range_that_holds_nothing_is_a_422_naming_both_bounds(make_client: Any) -> None:
    resp = make_client().get("/v1/search", params={"q": "museum", "since": "2026-09-13", "until": "2026-09-12"})
    assert resp.status_code == 422 and resp.json()["message"].startswith("since: 'since' must be before 'until'")


@pytest.mark.parametrize("param", ["since", "until"])
def test_an_unreadable_date_is_a_422_naming_the_parameter(make_client: Any, param: str) -> None:
    client = make_client()
    resp = client.get("/v1/search", params={"q": "museum", param: "12/09/2026"})
    assert resp.status_code == 422 and f"{param}: expected a date" in resp.json()["message"]
    body = client.post("/v1/ask", json={"question": "museum", param: "next week"})
    assert body.status_code == 422 and f"{param}: expected a date" in body.json()["message"]


def test_a_comma_list_of_sources_means_the_same_as_repeating_the_parameter(make_client: Any) -> None:
    client = make_client()
    repeated = search(client, source=["tech-wire", "archive"])
    assert repeated and {h["source_id"] for h in repeated} == {"tech-wire", "archive"}
    for form in ("tech-wire,archive", "tech-wire, archive", " archive ,tech-wire,"):
        comma = search(client, source=form)
        assert [h["chunk_id"] for h in comma] == [h["chunk_id"] for h in repeated], form
    mixed = search(client, source=["tech-wire,archive", "archive"])
    assert [h["chunk_id"] for h in mixed] == [h["chunk_id"] for h in repeated]


def test_a_comma_list_of_tags_means_the_same_as_repeating_the_parameter(make_client: Any) -> None:
    client = make_client()
    repeated = search(client, tag=["tech", "archive"])
    comma = search(client, tag="tech,archive")
    assert comma and {h["source_id"] for h in comma} == {"tech-wire", "archive"}
    assert [h["chunk_id"] for h in comma] == [h["chunk_id"] for h in repeated]


def test_ask_reads_comma_lists_in_its_sources_and_tags(make_client: Any) -> None:
    client = make_client()
    by_sources = ask(client, sources=["metro-daily,archive"])
    assert cited_urls(by_sources) == [MUSEUM] and not by_sources["abstained"]
    by_tags = ask(client, tags=["local, archive"])
    assert cited_urls(by_tags) == [MUSEUM]
    elsewhere = ask(client, sources=["tech-wire,world-brief"])  # the museum is not in these
    assert MUSEUM not in cited_urls(elsewhere)


@pytest.mark.parametrize("source", ["Tech Wire", "tech-wire;archive", "archive|tech-wire"])
def test_a_source_id_that_cannot_exist_is_a_422_not_an_empty_result(make_client: Any, source: str) -> None:
    client = make_client()
    resp = client.get("/v1/search", params={"q": "museum", "source": source})
    assert resp.status_code == 422 and "is not a source id" in resp.json()["message"], resp.text
    ask_resp = client.post("/v1/ask", json={"question": "museum", "sources": [source]})
    assert ask_resp.status_code == 422
