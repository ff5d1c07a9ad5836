// newsrag chat page. Article text and titles are untrusted: they are only ever set with
// textContent, and links are only made for http(s) URLs.
"use strict";
const $ = (id) => document.getElementById(id);
let traceId = null;

function safeUrl(url) {
  try {
    const u = new URL(url, window.location.href);
    return u.protocol === "http:" || u.protocol === "https:" ? u.href : null;
  } catch (_) { return null; }
}

function headers() {
  const h = { "Content-Type": "application/json" };
  const key = $("api-key").value.trim();
  if (key) { h.Authorization = "Bearer " + key; localStorage.setItem("newsrag-key", key); }
  return h;
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = false;
}

// One entry per cited article, numbered as its [n] markers, with its quotes under it. Answers carry
// `sources` (sources[n-1] is [n]); citations (one per quote) are grouped by n only as a fallback.
function sourcesOf(answer) {
  if (Array.isArray(answer.sources)) return answer.sources;
  const byN = new Map();
  for (const c of answer.citations || []) {
    if (!byN.has(c.n)) byN.set(c.n, { ...c, quotes: [] });
    if (c.quote && !byN.get(c.n).quotes.includes(c.quote)) byN.get(c.n).quotes.push(c.quote);
  }
  return [...byN.values()].sort((a, b) => a.n - b.n);
}

function span(className, text) {
  const s = document.createElement("span");
  s.className = className;
  s.textContent = text;
  return s;
}

function sourceEntry(source) {
  const li = document.createElement("li");
  li.value = source.n;
  li.id = "source-" + source.n;
  const href = safeUrl(source.url);
  const title = document.createElement(href ? "a" : "span");
  title.textContent = source.title || source.url;
  if (href) { title.href = href; title.target = "_blank"; title.rel = "noopener noreferrer"; }
  title.className = "citation-link";
  li.append(title);
  if (source.published_at) li.append(span("date", source.published_at.slice(0, 10)));
  if (source.source_id) li.append(span("source", source.source_id));
  const quotes = document.createElement("ul");
  quotes.className = "quotes";
  for (const quote of source.quotes || []) {
    const q = document.createElement("li");
    q.className = "quote";
    q.textContent = "“" + quote + "”";
    quotes.append(q);
  }
  li.append(quotes);
  return li;
}

function renderSources(sources) {
  $("citations").replaceChildren(...sources.map(sourceEntry));
}

// The answer as text nodes, each [n] that names a listed source a link to its entry.
function renderAnswerText(text, sources) {
  const known = new Set(sources.map((s) => s.n));
  const nodes = [];
  let last = 0;
  for (const m of text.matchAll(/\[(\d{1,3})\]/g)) {
    const n = Number(m[1]);
    if (!known.has(n)) continue;
    nodes.push(document.createTextNode(text.slice(last, m.index)));
    const a = document.createElement("a");
    a.className = "marker";
    a.href = "#source-" + n;
    a.textContent = m[0];
    nodes.push(a);
    last = m.index + m[0].length;
  }
  nodes.push(document.createTextNode(text.slice(last)));
  $("answer").replaceChildren(...nodes);
}

function renderDone(answer) {
  const sources = sourcesOf(answer);
  renderAnswerText(answer.text, sources);
  $("answer").classList.toggle("abstained", answer.abstained);
  renderSources(sources);
  const t = answer.timings || {};
  $("meta").textContent = `prompt ${answer.prompt_name} (version ${answer.prompt_version}) · ${answer.generator}` +
    ` · search ${Math.round(t.search || 0)} ms · generate ${Math.round(t.generate || 0)} ms · total ${Math.round(t.total || 0)} ms`;
  traceId = answer.trace_id;
  $("result").dataset.traceId = traceId;
  $("result").dataset.state = "done";
}

function handleEvent(name, data) {
  if (name === "meta") { traceId = data.trace_id; }
  else if (name === "delta") { $("answer").textContent += data.text; }
  else if (name === "done") { renderDone(data); }
  else if (name === "error") { showError(data.message); $("result").dataset.state = "error"; }
}

async function readStream(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      let name = "message", data = "";
      for (const line of block.split("\n")) {
        if (line.startsWith("event: ")) name = line.slice(7);
        else if (line.startsWith("data: ")) data += line.slice(6);
      }
      if (data) handleEvent(name, JSON.parse(data));
    }
  }
}

function requestBody() {
  const body = { question: $("question").value, stream: true };
  const source = $("source").value.trim();
  if (source) body.sources = source.split(",").map((s) => s.trim()).filter(Boolean);
  // Dates go as dates: the API's one rule makes "until" cover its whole day (UTC).
  if ($("since").value) body.since = $("since").value;
  if ($("until").value) body.until = $("until").value;
  return body;
}

async function ask(event) {
  event.preventDefault();
  $("error").hidden = true;
  $("result").hidden = false;
  $("result").dataset.state = "streaming";
  $("answer").textContent = "";
  $("citations").replaceChildren();
  $("meta").textContent = "";
  $("feedback-status").textContent = "";
  $("ask-button").disabled = true;
  try {
    const response = await fetch("/v1/ask", { method: "POST", headers: headers(), body: JSON.stringify(requestBody()) });
    if (!response.ok) {
      const err = await response.json().catch(() => ({ message: response.statusText }));
      showError(err.message || "request failed");
      $("result").hidden = true;
      return;
    }
    await readStream(response);
  } catch (e) {
    showError("The request failed: " + e.message);
  } finally {
    $("ask-button").disabled = false;
  }
}

async function sendFeedback(event) {
  if (!traceId) return;
  const rating = event.currentTarget.dataset.rating;
  const response = await fetch("/v1/feedback", {
    method: "POST", headers: headers(), body: JSON.stringify({ trace_id: traceId, rating }),
  });
  $("feedback-status").textContent = response.ok ? "Thanks for the feedback." : "Feedback was not saved.";
  $("result").dataset.feedback = response.ok ? rating : "failed";
}

$("api-key").value = localStorage.getItem("newsrag-key") || "";
$("ask-form").addEventListener("submit", ask);
$("thumbs-up").addEventListener("click", sendFeedback);
$("thumbs-down").addEventListener("click", sendFeedback);
