"""Fakes the e2e loops share: an LLM that follows the answer prompt closely enough for a prompt
release to tell a good template from one that drops the citation instruction."""

from __future__ import annotations

import re
from typing import Any


def obedient_llm(req: Any) -> tuple[int, dict[str, str], Any]:
    """Answers with article 1's most relevant-looking sentence; cites only when told to
    (the e2e loops and tests/dags/test_prompt_release.py)."""
    from tests.embeddings.fake_providers import openai_chat_completion

    system, user = req.json["messages"][0]["content"], req.json["messages"][-1]["content"]
    body = re.search(r'<article n="1"[^>]*>\ntitle: [^\n]*\n(.*?)\n</article>', user, re.DOTALL)
    question = set(re.findall(r"\w{4,}", user.rsplit("Question:", 1)[-1].lower()))
    sentences = re.split(r"(?<=[.!?])\s+", body.group(1)) if body else []
    best = max(sentences, key=lambda s: len(question & set(re.findall(r"\w{4,}", s.lower()))), default="")
    text = best.strip() or "The sources do not say."
    return 200, {}, openai_chat_completion(text + (" [1]" if "Cite every claim" in system and best else ""))
