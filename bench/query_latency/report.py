"""The benchmark's tables: per size, latencies, ratios and machine, the /v1/ask and /v1/search stage
profiles; then a summary across sizes and one line per size on where a cold and a warm ask go."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bench.harness.stats import format_ratio
from bench.query_latency.constants import CODE, TARGET_ASK_P95_MS, TARGET_ASK_SIZE, TARGET_OVERHEAD

Row = dict[str, Any]
LEFT_COLUMNS = ("measure", "stage", "target")
LATENCY_ROWS = (("raw Weaviate hybrid (precomputed vector)", "hybrid"),
                ("raw query embedding (MiniLM forward pass, 1 query)", "embed"),
                ("/v1/search (HTTP)", "search"),
                ("  /v1/search that ran the model on the query", "search_embedded"),
                ("  /v1/search with the query vector cached by the app", "search_cached_vector"),
                ("/v1/ask, all requests", "ask_all"),
                ("/v1/ask COLD (first ask of each question)", "ask_cold"),
                ("/v1/ask WARM (repeated questions)", "ask_warm"))


def _mark(ok: bool) -> str:
    return "[green]MET[/]" if ok else "[red]MISSED[/]"


def _within(value: float | None, target: float) -> bool:
    return value is not None and value <= target


def _table(title: str, *columns: str) -> Any:
    """A table whose label columns (measure, stage, target) are left-aligned, figures right-aligned."""
    from rich.table import Table

    table = Table(title=title)
    for col in columns:
        table.add_column(col, justify="left" if col in LEFT_COLUMNS else "right")
    return table


def render(res: dict[str, Any]) -> None:
    from rich.console import Console

    console = Console()
    if not console.is_terminal:
        console = Console(width=160)  # piped to a file: do not squeeze the tables into 80 columns
    console.print(header(res))
    console.print(code_line(res))
    for r in res["results"]:
        for table in (latency_table(r), ratios_table(r), ask_profile_table(r), search_profile_table(r)):
            console.print(table)
    console.print(summary_table(res["results"]))
    for line in ask_breakdown(res["results"]):
        console.print(line)
    console.print(f"peak RSS python {res['peak_rss_mib']:.0f} MiB, weaviate-server {res['weaviate_peak_rss_mib'] or 0:.0f} MiB; "
                  f"model load {res['model_load_s']} s, pool embedding {res['pool_embed_s']} s; total {res['total_s']:.0f} s")


def header(res: dict[str, Any]) -> str:
    corpus = res["corpus"] if isinstance(res["corpus"], str) else ", ".join(res["corpus"])
    return (f"[bold]newsrag query benchmark[/] - corpus: {corpus}; "
            f"pool {res['pool_chunks']} chunks embedded for real, others = pool vector + N(0, {res['noise_sigma']}²) "
            f"noise; {len(res['questions'])} questions; {res['queries']} requests per endpoint per size after "
            f"{res['warmup_rounds']} warm-up rounds; {res['cpu_count']} CPUs; load average at start "
            f"{res['loadavg_start']}, at end {res['loadavg_end']}; weaviate {res['weaviate_version']}")


def code_line(res: dict[str, Any]) -> str:
    code, end = res["code"], res["code_at_end"]
    changed = "" if end["digest"] == code["digest"] else (
        f" [yellow](changed during the run: {end['digest']}, {end['newest_change']}; "
        f"modules already imported kept the old code)[/]")
    return (f"code measured: {code['files']} source files of {', '.join(CODE)}: digest {code['digest']}, "
            f"newest change {code['newest_change']}{changed}")


def _ask_target(key: str, st: dict[str, float], n: int) -> str:
    if not key.startswith("ask") or not st.get("n"):
        return ""
    if n >= TARGET_ASK_SIZE:
        return f"p95 <= {TARGET_ASK_P95_MS:.0f} {_mark(st['p95'] <= TARGET_ASK_P95_MS)}"
    return f"(p95 <= {TARGET_ASK_P95_MS:.0f} applies at {TARGET_ASK_SIZE:,})"


def latency_table(r: Row) -> Any:
    n = r["chunks"]
    t = _table(f"{n:,} chunks - latency in ms (client side, loopback)",
               "measure", "n", "p50", "p95", "p99", "mean", "max", "target")
    for label, key in LATENCY_ROWS:
        st = r["latency_ms"][key]
        target = _ask_target(key, st, n)
        if not st.get("n"):
            t.add_row(label, "0", "", "", "", "", "", target)
            continue
        t.add_row(label, str(st["n"]), *(f"{st[f]:.1f}" for f in ("p50", "p95", "p99", "mean", "max")), target)
    return t


def ratios_table(r: Row) -> Any:
    n, b, mu, bu, ss = r["chunks"], r["build"], r["measure_usage"], r["build"]["usage"], r["search_settings"]
    s = _table(f"{n:,} chunks - ratios, build, machine", "measure", "value", "target")
    s.add_row("overhead ratio: /v1/search p95 / (hybrid p95 + embed p95)", format_ratio(r["overhead_ratio"]),
              f"<= {TARGET_OVERHEAD} {_mark(_within(r['overhead_ratio'], TARGET_OVERHEAD))}")
    if "overhead_ratio_embedded_only" in r:
        s.add_row("  same, only /v1/search requests that ran the model", format_ratio(r["overhead_ratio_embedded_only"]),
                  f"<= {TARGET_OVERHEAD} {_mark(_within(r['overhead_ratio_embedded_only'], TARGET_OVERHEAD))}")
    s.add_row("/v1/search p95 / raw hybrid p95", format_ratio(r["search_over_hybrid"]), "(for transparency)")
    s.add_row("search settings", f"alpha {ss['alpha']}, {ss['fusion']}, limit {ss['candidates']}, top_k {ss['top_k']}, "
              f"rerank {ss['rerank']}, props {ss['query_properties']}", "")
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
    return s


def ask_profile_table(r: Row) -> Any:
    p = _table(f"{r['chunks']:,} chunks - where /v1/ask spends its time (ms; server stages from Answer.timings)",
               "stage", "COLD mean", "COLD p95", "WARM mean", "WARM p95")
    cold, warm = r["ask_profile"]["cold"], r["ask_profile"]["warm"]
    either = cold or warm
    for key in [k for k in either if isinstance(either[k], dict)]:
        c, w = cold.get(key, {}), warm.get(key, {})
        p.add_row(key, *(f"{d[f]:.1f}" if d.get("n") else "" for d in (c, w) for f in ("mean", "p95")))
    for key in [k for k in either if not isinstance(either[k], dict) and k != "n"]:
        p.add_row(key, str(cold.get(key, "")), "", str(warm.get(key, "")), "")
    return p


def search_profile_table(r: Row) -> Any:
    q = _table(f"{r['chunks']:,} chunks - /v1/search stages (ms; from the response's timings)", "stage", "mean", "p95")
    for key, v in r["search_profile"].items():
        if isinstance(v, dict):
            q.add_row(key, f"{v['mean']:.1f}", f"{v['p95']:.1f}")
    return q


def _p95(key: str) -> Callable[[Row], str]:
    return lambda r: f"{r['latency_ms'][key]['p95']:.1f}" if r["latency_ms"][key].get("n") else "-"


def _ask_cell(key: str) -> Callable[[Row], str]:
    def cell(r: Row) -> str:
        st = r["latency_ms"][key]
        if not st.get("n"):
            return "-"
        mark = f" {_mark(st['p95'] <= TARGET_ASK_P95_MS)}" if r["chunks"] >= TARGET_ASK_SIZE else ""
        return f"{st['p95']:.1f}{mark}"
    return cell


def _summary_lines() -> list[tuple[str, Callable[[Row], str], str]]:
    ask_target = f"<= {TARGET_ASK_P95_MS:.0f} at {TARGET_ASK_SIZE:,}"
    return [
        ("collection build s (insert chunks/s)",
         lambda r: f"{r['build']['total_s']:.0f} ({r['build']['insert_chunks_per_s']:.0f}/s)", ""),
        ("raw Weaviate hybrid", _p95("hybrid"), ""),
        ("raw query embedding", _p95("embed"), ""),
        ("/v1/search", _p95("search"), ""),
        ("overhead ratio = search / (hybrid + embed)",
         lambda r: f"{format_ratio(r['overhead_ratio'], 2)} {_mark(_within(r['overhead_ratio'], TARGET_OVERHEAD))}",
         f"<= {TARGET_OVERHEAD}"),
        ("  same, /v1/search requests that ran the model",
         lambda r: format_ratio(r.get("overhead_ratio_embedded_only"), 2), f"<= {TARGET_OVERHEAD}"),
        ("/v1/search / raw hybrid", lambda r: format_ratio(r["search_over_hybrid"], 2), ""),
        ("/v1/ask, all requests", _ask_cell("ask_all"), ask_target),
        ("/v1/ask COLD (first ask of a question)", _ask_cell("ask_cold"), ask_target),
        ("/v1/ask WARM (repeated question)", _ask_cell("ask_warm"), ask_target),
        ("/v1/ask p50 COLD / WARM", lambda r: f"{r['latency_ms']['ask_cold'].get('p50', 0):.0f} / "
                                              f"{r['latency_ms']['ask_warm'].get('p50', 0):.0f}", ""),
        ("other processes' CPU while measuring (cores)",
         lambda r: f"{r['measure_usage']['other_processes_cores']:.2f}", "~0"),
        ("load average (1 min) start -> end",
         lambda r: f"{r['measure_usage']['loadavg_start'][0]} -> {r['measure_usage']['loadavg_end'][0]}", ""),
        ("peak RSS python / weaviate MiB",
         lambda r: f"{r['peak_rss_mib']:.0f} / {r['weaviate_peak_rss_mib'] or 0:.0f}", ""),
    ]


def summary_table(results: list[Row]) -> Any:
    t = _table("summary (latencies are p95 in ms unless noted)", "measure",
               *(f"{r['chunks']:,} chunks" for r in results), "target")
    for label, cell, target in _summary_lines():
        t.add_row(label, *(cell(r) for r in results), target)
    return t


def ask_breakdown(results: list[Row]) -> list[str]:
    """Per size, COLD and WARM: the mean ask split into its stages, largest first."""
    lines = []
    for r in results:
        for label, prof in (("COLD", r["ask_profile"]["cold"]), ("WARM", r["ask_profile"]["warm"])):
            if not prof:
                continue
            stages = {k: prof[k]["mean"] for k in ("embed", "search", "rerank", "context", "generate")}
            outside = prof["outside Answerer (HTTP, JSON, feedback log)"]["mean"]
            total = prof["client"]["mean"]
            parts = sorted([*stages.items(), ("outside Answerer", outside)], key=lambda kv: -kv[1])
            lines.append(f"{r['chunks']:,} chunks, /v1/ask {label} (n={prof['n']}): mean {total:.0f} ms = "
                         + ", ".join(f"{k} {v:.0f} ({100 * v / total:.0f}%)" for k, v in parts)
                         + f"; inside generate: {prof['generate: embed new sentence texts']['mean']:.0f} ms embedding "
                         f"{prof['sentence texts embedded per ask (cache misses)']:.0f} new sentence texts, "
                         f"{prof['generate: question embedded again']['mean']:.0f} ms embedding the question a second time, "
                         f"{prof['generate: split + score + cache + select (rest)']['mean']:.0f} ms splitting, "
                         f"scoring and reading cached vectors")
    return lines
