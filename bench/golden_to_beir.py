#!/usr/bin/env python
"""Turn a golden set and its article corpus into a BEIR folder, so that bench/retrieval_quality.py
measures retrieval on news the same way it does on SciFact.

    .venv/bin/python bench/golden_to_beir.py GOLDEN.jsonl CORPUS.jsonl --out DIR [--split dev]

CORPUS.jsonl holds one article per line with ``url``, ``title`` and ``text`` (as
bench/realtimeqa_golden.py writes it). Every answerable case with ``gold_urls`` becomes a query
judged relevant (grade 1) for each gold url in the corpus; cases without any become nothing
(counted). The url is the BEIR document id.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def convert(golden: Path, corpus: Path, out: Path, split: str) -> dict[str, int]:
    from newsrag.evaluation.golden import load_golden
    from newsrag.evaluation.metrics import normalize_url

    ids: dict[str, str] = {}
    (out / "qrels").mkdir(parents=True, exist_ok=True)
    with corpus.open(encoding="utf-8") as src, (out / "corpus.jsonl").open("w", encoding="utf-8") as dst:
        for line in src:
            article = json.loads(line)
            url = str(article.get("url") or "")
            if url and normalize_url(url) not in ids:
                ids[normalize_url(url)] = url
                dst.write(json.dumps({"_id": url, "title": article.get("title") or "",
                                      "text": article.get("text") or ""}, ensure_ascii=False) + "\n")
    queries = judged = skipped = 0
    with (out / "queries.jsonl").open("w", encoding="utf-8") as q, (out / "qrels" / f"{split}.tsv").open("w") as r:
        r.write("query-id\tcorpus-id\tscore\n")
        for case in load_golden(golden).cases:
            gold = sorted({ids[normalize_url(u)] for u in case.gold_urls if normalize_url(u) in ids})
            if not case.answerable or not gold:
                skipped += 1
                continue
            q.write(json.dumps({"_id": case.id, "text": case.question}, ensure_ascii=False) + "\n")
            r.writelines(f"{case.id}\t{doc}\t1\n" for doc in gold)
            queries, judged = queries + 1, judged + len(gold)
    return {"documents": len(ids), "queries": queries, "judgments": judged, "cases_without_gold_urls": skipped}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("golden", type=Path)
    p.add_argument("corpus", type=Path)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--split", default="dev")
    args = p.parse_args(argv)
    print(json.dumps(convert(args.golden, args.corpus, args.out, args.split)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
