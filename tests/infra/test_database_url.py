"""``NEWSRAG_DATABASE_URL``: one PostgreSQL database where all five stores of shared state live, so
nothing a worker needs stays on its local disk. Each store's own variable still wins; unset, every
store is its SQLite file under NEWSRAG_HOME as before."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from newsrag.app.services import Services
from newsrag.core.errors import ConfigError
from newsrag.core.settings import DatabaseSettings, Settings
from newsrag.embeddings.cache import text_key
from newsrag.evaluation.feedback import FeedbackStore, feedback_location
from newsrag.evaluation.history import HistoryStore, history_location
from newsrag.infra.sqldb import SqlDb
from newsrag.ingest.context import IngestContext, embedding_cache_location, state_location
from newsrag.ingest.state import StoredDoc
from newsrag.prompts.release import open_registry, registry_location
from tests.app.scripted import ConstEmbedder, NoStore
from tests.evaluation.factories import T0, make_run, question
from tests.infra.test_stores import answer

URL = "postgresql://newsrag:s3cret-pw@db.internal:5432/newsrag"
LOCATIONS = {state_location: "ingest-state.sqlite", embedding_cache_location: "embedding-cache.sqlite",
             feedback_location: "feedback.sqlite", history_location: "eval-history.sqlite",
             registry_location: "prompt-registry.sqlite"}


@pytest.mark.unit
def test_unset_every_store_is_its_sqlite_file_in_the_home(tmp_path: Path) -> None:
    root = Settings({"NEWSRAG_HOME": str(tmp_path)})
    assert {fn.__name__: fn(root) for fn in LOCATIONS} == \
        {fn.__name__: str(tmp_path / name) for fn, name in LOCATIONS.items()}


@pytest.mark.unit
def test_set_every_store_lives_in_the_one_database(tmp_path: Path) -> None:
    root = Settings({"NEWSRAG_HOME": str(tmp_path), "NEWSRAG_DATABASE_URL": URL})
    assert {fn(root) for fn in LOCATIONS} == {URL}


@pytest.mark.unit
@pytest.mark.parametrize("own", ["NEWSRAG_INGEST_STATE_FILE", "NEWSRAG_INGEST_EMBEDDING_CACHE",
                                 "NEWSRAG_APP_FEEDBACK_DB", "NEWSRAG_EVAL_HISTORY_URL", "NEWSRAG_RELEASE_REGISTRY"])
def test_a_stores_own_variable_wins_over_the_shared_database(tmp_path: Path, own: str) -> None:
    mine = str(tmp_path / "mine.sqlite")
    root = Settings({"NEWSRAG_HOME": str(tmp_path), "NEWSRAG_DATABASE_URL": URL, own: mine})
    found = {fn(root) for fn in LOCATIONS}
    assert found == {URL, mine} and sum(fn(root) == mine for fn in LOCATIONS) == 1


@pytest.mark.unit
@pytest.mark.parametrize("given", ["/var/lib/newsrag/all.sqlite", "mysql://u:s3cret-pw@db/newsrag"])
def test_anything_but_a_postgresql_url_is_refused_without_echoing_it(given: str) -> None:
    with pytest.raises(ConfigError) as refused:
        Settings({"NEWSRAG_DATABASE_URL": given}).get(DatabaseSettings)
    assert "NEWSRAG_DATABASE_URL" in str(refused.value) and "postgresql://" in str(refused.value)
    assert "s3cret" not in str(refused.value) and given not in str(refused.value)


@pytest.mark.unit
def test_an_empty_value_means_unset(tmp_path: Path) -> None:
    root = Settings({"NEWSRAG_HOME": str(tmp_path), "NEWSRAG_DATABASE_URL": ""})
    assert feedback_location(root) == str(tmp_path / "feedback.sqlite")


class NamedStore(NoStore):
    name = "NewsChunk"


@pytest.mark.integration
def test_with_the_url_set_all_five_stores_open_on_postgresql_and_the_home_holds_no_sqlite_file(
        tmp_path: Path, postgres_url: str) -> None:
    home = tmp_path / "home"
    home.mkdir()
    root = Settings({"NEWSRAG_HOME": str(home), "NEWSRAG_DATABASE_URL": postgres_url})
    with IngestContext(root, store=NamedStore(), embedder=ConstEmbedder()) as ctx:  # type: ignore[arg-type]
        ctx.state.remember_docs("metro", [StoredDoc("d1", "https://x/1")])
        ctx.state.save_signature("d1", "metro", "https://x/1", np.arange(128, dtype=np.uint64))
        ctx.cache.put_many("fake/const-4", {text_key("t"): np.ones(4, dtype=np.float32)})
    feedback = FeedbackStore(feedback_location(root))
    feedback.record_answer(answer("t1"), "question?")
    feedback.add_feedback("t1", 1)
    feedback.close()
    with HistoryStore(history_location(root)) as history:
        history.save(make_run("run-1", T0, {"hit@k": 0.5}, results=[question("q1")]))
    registry = open_registry(root)
    registry.deploy(author="test")
    registry.close()
    app = Services(root, store=NoStore(), embedder=ConstEmbedder())  # type: ignore[arg-type]
    assert (app.feedback.location, app.registry.location) == (postgres_url, postgres_url)
    app.feedback.record_answer(answer("t2"), "from the app?")
    app.close()
    assert [p.name for p in home.rglob("*") if ".sqlite" in p.name] == []
    db = SqlDb(postgres_url)
    counts = {t: db.execute(f"SELECT COUNT(*) FROM {t}")[0][0] for t in
              ("source_docs", "doc_signatures", "vectors", "answers", "feedback", "eval_runs", "prompt_versions")}
    db.close()
    shipped = counts.pop("prompt_versions")  # the shipped templates' versions the deploy registered
    assert counts == {"source_docs": 1, "doc_signatures": 1, "vectors": 1, "answers": 2, "feedback": 1, "eval_runs": 1}
    assert shipped >= 1
