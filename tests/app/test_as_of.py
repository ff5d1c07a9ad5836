"""``as_of`` at the API's edge (#14 item 1, "Must show: bad input"): /v1/ask, /v1/search and the
chat completions extension field parse it by the one rule and hand the library a UTC datetime; an
unreadable one, one in the future and since > until are 422s naming the field (OpenAI's error shape,
with ``param``, on the chat route). The CLI's ``--as-of`` exits 2 naming the option. The real app
with a scripted answerer: no Weaviate."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.app.conftest import sse_events

pytestmark = pytest.mark.unit

CHAT = {"model": "newsrag", "messages": [{"role": "user", "content": "harbor"}]}
END_OF_OCT_19 = datetime(2026, 10, 19, 23, 59, 59, 999999, tzinfo=UTC)
TOMORROW = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
IN_AN_HOUR = (datetime.now(UTC) + timedelta(hours=1)).isoformat()


@pytest.mark.parametrize("stream", [False, True])
def test_ask_hands_the_parsed_as_of_to_the_answerer(make_app: Any, stream: bool) -> None:
    client, services = make_app()
    resp = client.post("/v1/ask", json={"question": "harbor", "as_of": "2026-10-19", "stream": stream})
    assert resp.status_code == 200
    assert services.answerer.calls[-1]["as_of"] == END_OF_OCT_19  # a date: the end of its day
    client.post("/v1/ask", json={"question": "harbor", "as_of": "2026-10-19T10:00+02:00", "stream": stream})
    assert services.answerer.calls[-1]["as_of"] == datetime(2026, 10, 19, 8, tzinfo=UTC)
    client.post("/v1/ask", json={"question": "harbor", "stream": stream})
    assert services.answerer.calls[-1]["as_of"] is None  # the library takes now


@pytest.mark.parametrize("stream", [False, True])
def test_chat_completions_take_as_of_as_an_extension_field(make_app: Any, stream: bool) -> None:
    client, services = make_app()
    resp = client.post("/v1/chat/completions", json={**CHAT, "as_of": "2026-10-19", "stream": stream})
    assert resp.status_code == 200 and services.answerer.calls[-1]["as_of"] == END_OF_OCT_19
    if not stream:
        assert "as_of" in resp.json()["newsrag"]


@pytest.mark.parametrize(("value", "fragment"), [
    ("soon", "as_of: expected a date"),
    ("19/10/2026", "as_of: expected a date"),
    (TOMORROW, "is in the future"),
    (IN_AN_HOUR, "minutes of clock skew"),
])
def test_a_bad_as_of_is_a_422_naming_it_on_every_route(make_app: Any, value: str, fragment: str) -> None:
    client, services = make_app()
    for stream in (False, True):
        ask = client.post("/v1/ask", json={"question": "harbor", "as_of": value, "stream": stream})
        assert ask.status_code == 422 and ask.json()["message"].startswith("as_of: ")
        assert fragment in ask.json()["message"] and ask.json()["error"] == "invalid_request"
    search = client.get("/v1/search", params={"q": "harbor", "as_of": value})
    assert search.status_code == 422 and search.json()["message"].startswith("query.as_of: ")
    assert fragment.removeprefix("as_of: ") in search.json()["message"]
    chat = client.post("/v1/chat/completions", json={**CHAT, "as_of": value})
    error = chat.json()["error"]  # OpenAI's shape, so SDKs raise it with the field named
    assert chat.status_code == 422 and error["param"] == "as_of" and error["code"] == 422
    assert error["message"].startswith("as_of: ") and fragment.removeprefix("as_of: ") in error["message"]
    assert services.answerer.calls == []  # refused before anything was asked


@pytest.mark.parametrize(("since", "until"), [("2026-10-20", "2026-10-19"),
                                              ("2026-10-19T12:00Z", "2026-10-19T12:00Z")])
def test_since_after_until_is_a_422_naming_since(make_app: Any, since: str, until: str) -> None:
    client, services = make_app()
    ask = client.post("/v1/ask", json={"question": "harbor", "since": since, "until": until})
    search = client.get("/v1/search", params={"q": "harbor", "since": since, "until": until})
    for resp in (ask, search):
        assert resp.status_code == 422, resp.text
        assert resp.json()["message"].startswith("since: 'since' must be before 'until'")
    assert services.answerer.calls == []


def test_the_openai_422_names_param_only_when_one_field_is_at_fault(make_app: Any) -> None:
    client, _ = make_app()
    two = client.post("/v1/chat/completions", json={"model": "newsrag", "as_of": "soon"}).json()["error"]
    assert two["param"] is None and "messages" in two["message"] and "as_of" in two["message"]
    role = client.post("/v1/chat/completions", json={"model": "newsrag", "messages": [{"role": "wizard"}]})
    assert role.json()["error"]["param"] == "messages.0.role"


def test_the_stream_done_event_carries_the_answer_with_its_as_of(make_app: Any) -> None:
    client, services = make_app()
    original = services.answerer.answer
    services.answerer.answer = lambda q: original(q).model_copy(update={"as_of": END_OF_OCT_19})
    resp = client.post("/v1/ask", json={"question": "harbor", "as_of": "2026-10-19", "stream": True})
    done = [json.loads(data) for name, data in sse_events(resp.text) if name == "done"]
    assert done and done[0]["as_of"] == "2026-10-19T23:59:59.999999Z"


# -- the CLI ---------------------------------------------------------------------------------------

class _Recorder:
    """Stands in for the answerer and store ``newsrag ask`` builds: records the as_of it is given."""

    def __init__(self) -> None:
        self.as_of: list[Any] = []

    def ask(self, question: str, **kwargs: Any) -> Any:
        from tests.app.scripted import ScriptedAnswerer

        self.as_of.append(kwargs["as_of"])
        return ScriptedAnswerer().answer(question).model_copy(update={"as_of": kwargs["as_of"]})

    def close(self) -> None:
        return None


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch) -> tuple[Any, _Recorder]:
    from typer.testing import CliRunner

    from newsrag.cli import ask_view
    from newsrag.cli.main import app

    recorder = _Recorder()
    monkeypatch.setattr(ask_view, "build_answerer", lambda settings: (recorder, recorder))
    return (lambda *args: CliRunner().invoke(app, list(args))), recorder


def test_the_cli_passes_as_of_and_prints_it(cli: tuple[Any, _Recorder]) -> None:
    run, recorder = cli
    result = run("ask", "harbor", "--as-of", "2026-10-19", "--json")
    assert result.exit_code == 0, result.output
    assert recorder.as_of == [END_OF_OCT_19]
    assert json.loads(result.stdout)["as_of"] == "2026-10-19T23:59:59.999999Z"
    plain = run("ask", "harbor", "--as-of", "2026-10-19T08:00Z")
    assert plain.exit_code == 0 and "as of 2026-10-19T08:00:00+00:00" in " ".join(plain.stdout.split())
    assert run("ask", "harbor", "--json").exit_code == 0 and recorder.as_of[-1] is None


@pytest.mark.parametrize(("value", "fragment"), [("soon", "--as-of: expected a date"),
                                                 (TOMORROW, "--as-of: "), (IN_AN_HOUR, "clock skew")])
def test_a_bad_as_of_exits_2_naming_the_option(cli: tuple[Any, _Recorder], value: str, fragment: str) -> None:
    run, recorder = cli
    result = run("ask", "harbor", "--as-of", value)
    assert result.exit_code == 2 and fragment in " ".join(result.output.split()), result.output
    assert "Traceback" not in result.output and recorder.as_of == []
