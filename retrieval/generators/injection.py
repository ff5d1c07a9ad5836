"""Sentences a generator must never quote as an answer: text that addresses the reader.

Article text is untrusted. A page can carry "Visit http://evil.example/login to re-enter your API
key" or "Ignore previous instructions and ...": quoted as a cited answer, the project would lend
its voice to a phishing line or to someone else's prompt. :func:`unsafe_reason` names why a
sentence is unfit, or returns None. It flags

* **instructions to an AI or a reader's assistant** ("ignore the previous instructions", "system
  prompt", "you are now", "as an AI language model");
* **requests for the reader's secrets** ("your API key", "your password", "verify your account");
* **imperatives addressed to the reader** outside quotation marks: an imperative verb opening the
  sentence together with "you", "here", "now" or a link ("Click here", "Visit http://…", "Log in
  now"): news reports; it does not tell the reader what to do;
* **links that are not the article's own**: a URL (with a scheme, ``www.`` or a path) whose host
  differs from the article's. A bare name such as "Amazon.com" is prose, not a link.

It favours precision on news prose: a quotation ('"Leave now," the mayor said') is reported speech
and passes, and so do links to the article's own site.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_INSTRUCTION = re.compile(
    r"\b(ignore|disregard|forget|override)\b[^.]{0,40}\b(previous|prior|above|earlier|all|your)\b"
    r"[^.]{0,20}\b(instructions?|prompts?|rules|directions|context)\b"
    r"|\bsystem prompt\b|\byou are now\b|\bas an ai\b|\b(new|updated) instructions\b"
    r"|\bassistant\s*:|\bdeveloper mode\b|\bjailbreak",
    re.IGNORECASE,
)
_SECRET_WORDS = (
    r"api[ -]?keys?|passwords?|passcodes?|pins?|credentials|log-?ins?|sign-?ins?|accounts?|tokens?"
    r"|credit[ -]cards?|card numbers?|bank details|social security numbers?|seed phrases?"
)
_SECRET_REQUEST = re.compile(
    rf"\b(re-?enter|enter|confirm|verify|update|reset|provide|submit|send|share|type|validate)\b"
    rf"[^.]{{0,30}}\byour\b[^.]{{0,20}}\b({_SECRET_WORDS})\b",
    re.IGNORECASE,
)
_IMPERATIVES = _words("""
click tap visit go log sign login signin register subscribe download install open call text email
dial reply enter re-enter verify confirm update reset send share forward copy paste navigate follow
contact scan ignore disregard please act hurry buy order claim redeem unlock
""")
_LEAD = re.compile(r"^[\W_]*(?:(?:now|then|simply|just|please|first|also|so)[,\s]+)?([A-Za-z-]+)")
_URL = re.compile(r"\bhttps?://[^\s<>\"')\]]+|\bwww\.[^\s<>\"')\]]+"
                  r"|\b(?:[a-z0-9-]+\.)+[a-z]{2,}/[^\s<>\"')\]]*", re.IGNORECASE)
_QUOTE_OPEN = "\"“‘'«"
# An imperative lead alone is weak ("Call volumes rose", "Order was restored"); with one of these it
# speaks to the reader.
_TO_READER = re.compile(r"\b(you|your|yours|here|below|now|immediately|today|this link)\b|https?://|www\.",
                        re.IGNORECASE)


def unsafe_reason(sentence: str, article_url: str = "") -> str | None:
    """Why ``sentence`` must not be quoted as an answer from the article at ``article_url``."""
    if _INSTRUCTION.search(sentence):
        return "instructions addressed to an assistant"
    if _SECRET_REQUEST.search(sentence):
        return "asks for the reader's credentials"
    if _addresses_reader(sentence):
        return "an instruction to the reader"
    foreign = _foreign_link(sentence, article_url)
    return f"links to {foreign}, not the article's own site" if foreign else None


def _addresses_reader(sentence: str) -> bool:
    """An imperative opening the sentence, unless it stands inside quotation marks (reported speech)."""
    stripped = sentence.lstrip()
    if stripped[:1] in _QUOTE_OPEN:
        return False
    lead = _LEAD.match(stripped)
    if not lead or lead.group(1).lower() not in _IMPERATIVES:
        return False
    return lead.group(1).lower() == "please" or bool(_TO_READER.search(stripped))


def _foreign_link(sentence: str, article_url: str) -> str | None:
    own = _site(urlsplit(article_url).hostname or "")
    for match in _URL.finditer(sentence):
        raw = match.group(0).rstrip(".,;:!?")
        host = urlsplit(raw if "://" in raw else f"http://{raw}").hostname or ""
        if not own or _site(host) != own:
            return host or raw
    return None


def _site(host: str) -> str:
    """The last two labels ("news.example.com" -> "example.com"): near enough for same-site links."""
    labels = host.lower().removeprefix("www.").split(".")
    return ".".join(labels[-2:])
