"""The evaluation run: replay each dialogue turn by turn, judge every answer, score, report.

``history="reference"``: at turn ``t`` the model sees the reference answers of turns ``< t``, so
every turn is an independent request (this is also what the lmms-eval export does).
``history="model"``: it sees its own earlier answers, so errors compound, as in MMDU and
VLMEvalKit; turns are then generated in rounds (turn 1 of every dialogue, then turn 2, ...).

Everything finished is in ``OUT/cache.sqlite`` (answers and judgements, one commit per row), so a
run that is killed and started again with the same arguments repeats no finished call and ends
with the same files as an uninterrupted run. Output files:

* ``run.json`` — what was evaluated and how (no API key; URLs without credentials), accounting;
* ``turns.jsonl`` — one record per turn: question, reference, answer, judge status and scores;
* ``scores.json`` / ``report.md`` — contextual accuracy with bootstrap intervals, breakdowns;
* ``plots/*.png`` — when matplotlib is installed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

from ..errors import MMCRError
from .bench import HISTORY_MODES, build_request, history_text, load_dialogues, question_text, turn_pairs
from .judge import Judge, JudgeConfig, JudgeItem
from .models import ModelAdapter
from .store import EvalStore

logger = logging.getLogger(__name__)

RESULTS_VERSION = 1


@dataclass
class EvalResult:
    """A finished run: its folder, per-turn records, scores and run description."""

    out: Path
    turns: list
    scores: dict
    run: dict


def write_atomic(path: Path, text: str) -> None:
    """Write through a temporary file and rename, so a killed run never leaves half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _answer_key(model: ModelAdapter, history: str, request) -> str:
    blob = f"{model.name}\x00{model.fingerprint()}\x00{history}\x00{request.digest()}"
    return hashlib.sha256(blob.encode()).hexdigest()


def _generate(dialogues, model: ModelAdapter, history: str, store: EvalStore) -> tuple[dict, dict, dict]:
    """Answers for every turn: ``answers[id][t]`` (``None`` where the model failed), requests, errors."""
    pairs = {d.id: turn_pairs(d) for d in dialogues}
    answers = {d.id: [None] * len(pairs[d.id]) for d in dialogues}
    requests, errors = {}, {}
    rounds = [None] if history == "reference" else range(max(len(p) for p in pairs.values()))
    stats = {"generated": 0, "cached": 0, "failed": 0}
    for t in rounds:
        todo = []
        for d in dialogues:
            turns = range(len(pairs[d.id])) if t is None else ([t] if t < len(pairs[d.id]) else [])
            for k in turns:
                if history == "reference":
                    prior = [pairs[d.id][j][1].text for j in range(k)]
                else:
                    prior = [a if a is not None else "" for a in answers[d.id][:k]]
                request = build_request(d, k, prior)
                requests[(d.id, k)] = request
                key = _answer_key(model, history, request)
                hit = store.get_answer(key)
                if hit is not None:
                    answers[d.id][k] = hit["answer"]
                    stats["cached"] += 1
                else:
                    todo.append((request, key))
        step = max(1, int(getattr(model, "batch_size", 16) or 16))
        for start in range(0, len(todo), step):
            chunk = todo[start:start + step]
            generations = model.generate([r for r, _ in chunk])
            if len(generations) != len(chunk):
                raise MMCRError(f"model {model.name} returned {len(generations)} answers for {len(chunk)} requests")
            for (request, key), gen in zip(chunk, generations):
                if gen.text is None:
                    errors[(request.dialogue_id, request.turn)] = gen.error or "model_error"
                    stats["failed"] += 1
                    continue
                store.put_answer(key, dialogue_id=request.dialogue_id, turn=request.turn, answer=gen.text,
                                 prompt_tokens=gen.prompt_tokens, completion_tokens=gen.completion_tokens)
                answers[request.dialogue_id][request.turn] = gen.text
                stats["generated"] += 1
            logger.info("generated %d/%d answer(s)%s", min(start + step, len(todo)), len(todo),
                        "" if t is None else f" for turn {t + 1}")
    return answers, requests, {"errors": errors, **stats}


def evaluate(data, model: ModelAdapter, judge: Union[Judge, JudgeConfig], *, out, history: str = "reference",
             taxonomy=None, limit: Optional[int] = None, image_root=None, cache=None, n_boot: int = 1000,
             seed: int = 0, plots: bool = True) -> EvalResult:
    """Evaluate ``model`` on MMCR-Bench ``data`` with ``judge``; write the run folder ``out``.

    ``data``: anything :func:`~mmcr_datasets.eval.bench.load_dialogues` accepts. ``cache``: a
    SQLite file to share between runs (default ``OUT/cache.sqlite``). Started again with the same
    arguments, a killed run resumes from the cache.
    """
    from .report import write_reports
    from .scoring import score_turns

    if history not in HISTORY_MODES:
        raise ValueError(f"history must be one of {HISTORY_MODES}, not {history!r}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    dialogues = load_dialogues(data, taxonomy=taxonomy, limit=limit, image_root=image_root)
    store = EvalStore(cache or out / "cache.sqlite")
    if isinstance(judge, JudgeConfig):
        judge = Judge(judge, store=store)
    elif judge.store is None:
        judge.store = store
    identity = json.dumps({"history": history, "model": model.name, "model_settings": model.fingerprint(),
                           "judge": judge.config.model, "prompt": judge.prompt.version}, sort_keys=True)
    previous = store.get_meta("run_identity")
    if previous is not None and previous != identity:
        logger.warning("the cache in %s was used by a run with other settings; its entries are keyed by content, "
                       "so only matching answers and judgements are reused", store.path)
    store.set_meta("run_identity", identity)
    try:
        answers, requests, gen_stats = _generate(dialogues, model, history, store)
        items, index = [], {}
        for d in dialogues:
            for k, (user, reference) in enumerate(turn_pairs(d)):
                if answers[d.id][k] is None:
                    continue
                request = requests[(d.id, k)]
                index[(d.id, k)] = len(items)
                items.append(JudgeItem(d.id, k, history_text(request), question_text(request), reference.text,
                                       answers[d.id][k], request.images))
        logger.info("judging %d turn(s) with %s", len(items), judge.config.model)
        judgements = judge.judge_many(items)
        turns = []
        for d in dialogues:
            for k, (user, reference) in enumerate(turn_pairs(d)):
                request = requests[(d.id, k)]
                rec = {"dialogue_id": d.id, "turn": k + 1, "domain": d.domain, "subtopic": d.subtopic,
                       "dialogue_type": d.dialogue_type, "num_turns": len(turn_pairs(d)),
                       "images_seen": len(request.images), "question": question_text(request),
                       "reference": reference.text, "answer": answers[d.id][k]}
                if (d.id, k) in index:
                    j = judgements[index[(d.id, k)]]
                    rec.update(status=j.status, reason=j.reason, scores=j.scores, overall=j.overall,
                               judge_raw=j.raw, judge_key=j.key, cached=j.cached)
                else:
                    rec.update(status="no_answer", reason=gen_stats["errors"].get((d.id, k), "model_error"),
                               scores=None, overall=None, judge_raw=None, judge_key=None, cached=False)
                turns.append(rec)
    finally:
        store.close()
    scores = score_turns(turns, n_boot=n_boot, seed=seed)
    run = {
        "results_version": RESULTS_VERSION,
        "history": history,
        "data": str(data) if isinstance(data, (str, Path)) else type(data).__name__,
        "num_dialogues": len(dialogues),
        "num_turns": len(turns),
        "model": {"name": model.name, "fingerprint": model.fingerprint(), "settings": model.settings()},
        "judge": {**judge.config.public(), "base_url": judge.base_url, "prompt_version": judge.prompt.version,
                  "prompt_sha": judge.prompt.sha},
        "generation": {k: v for k, v in gen_stats.items() if k != "errors"},
        "accounting": judge.accounting.to_dict(judge.config),
        "seconds": round(time.time() - started, 3),
    }
    write_atomic(out / "turns.jsonl", "".join(json.dumps(t, ensure_ascii=False) + "\n" for t in turns))
    write_reports(out, run, scores, plots=plots)
    write_atomic(out / "run.json", json.dumps(run, indent=2, ensure_ascii=False) + "\n")
    return EvalResult(out, turns, scores, run)


def load_run(path) -> tuple[dict, list]:
    """``(run, turns)`` of a finished run folder."""
    path = Path(path)
    run_file, turns_file = path / "run.json", path / "turns.jsonl"
    if not run_file.is_file() or not turns_file.is_file():
        raise MMCRError(f"{path} is not a finished eval run (needs run.json and turns.jsonl); "
                        f"run `mmcr eval ... --out {path}` first, or again to finish it")
    run = json.loads(run_file.read_text(encoding="utf-8"))
    turns = [json.loads(line) for line in turns_file.read_text(encoding="utf-8").splitlines() if line.strip()]
    return run, turns
