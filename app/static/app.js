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

function renderCitations(citations) {
  const list = $("citations");
  list.replaceChildren();
  for (const c of citations) {
    const li = document.createElement("li");
    li.value = c.n;
    const href = safeUrl(c.url);
    const title = document.createElement(href ? "a" : "span");
    title.textContent = c.title || c.url;
    if (href) { title.href = href; title.target = "_blank"; title.rel = "noopener noreferrer"; }
    title.className = "citation-link";
    li.append(title);
    if (c.published_at) {
      const d = document.createElement("span");
      d.className = "date";
      d.textContent = c.published_at.slice(0, 10);
      li.append(d);
    }
    if (c.source_id) {
      const s = document.createElement("span");
      s.className = "source";
      s.textContent = c.source_id;
      li.append(s);
    }
    const q = document.createElement("span");
    q.className = "quote";
    q.textContent = "“" + c.quote + "”";
    li.append(q);
    list.append(li);
  }
}

function renderDone(answer) {
  $("answer").textContent = answer.text;
  $("answer").classList.toggle("abstained", answer.abstained);
  renderCitations(answer.citations);
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
  else if (name === "error") { showError(data.message); }
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
  if ($("since").value) body.since = $("since").value + "T00:00:00Z";
  if ($("until").value) body.until = $("until").value + "T23:59:59Z";
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
