"""The generation run: documents -> tasks -> LLM dialogues -> validated, scored, sharded records.

Output folder layout (``OUT``)::

    OUT/data/part-00000.jsonl ...     canonical records (``mmcr build OUT/data --format messages``)
    OUT/data/images/ab/<sha256>.jpg   the images, content-addressed, referenced relative to data/
    OUT/quarantine.jsonl              every task that did not become a record, with its reason
    OUT/provenance.jsonl              per record: document, domain score, repairs, tokens, model
    OUT/manifest.json                 counts, token use and cost, configuration, timings; written
                                      last, so the output is complete exactly when it exists
    OUT/state.sqlite                  LLM cache and task outcomes (what makes resuming work)

Resuming: every LLM reply is committed to the cache the moment it arrives, and every finished
task to the outcomes table; the output files are rewritten from the outcomes table, in task
order, when the run ends. Rerunning the same command after a crash or a kill therefore skips
finished tasks, answers re-asked requests from the cache, and writes each dialogue once. On
SIGINT/SIGTERM the run stops starting new requests and waits for those in flight, so a stopped
run repeats no call; a SIGKILL can lose at most the replies in flight at that moment (at most
``concurrency`` requests are sent again).

``n`` counts dialogues that pass parsing, validation and an absolute CLIP threshold: tasks are
started in document order, never more than needed to reach ``n`` (so the set of tasks used is
the shortest prefix of the task order that yields ``n`` dialogues, whatever the concurrency).
A CLIP *percentile* filter is applied when the output is written and can only lower the count.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from itertools import islice
from pathlib import Path
from typing import Optional, Union

from ..errors import MMCRError
from ..taxonomy import TaxonomyLike, load_taxonomy
from ..validation.checks import CheckContext, ValidationProfile, check_record
from ..validation.issues import has_errors
from .alignment import AlignmentFilter, alignment_of, percentile_cut, texts_per_image
from .documents import list_document_files, read_documents
from .domains import DomainAssignment, FixedDomainAssigner, check_method, parse_domain_reply
from .llm import LLMCallError, LLMClient, LLMSettings, Usage
from .parsing import ParseFailure, parse_dialogue
from .prompting import (DIALOGUE_PROMPT, DOMAIN_PROMPT, ImageEncoding, build_dialogue_request,
                        build_domain_request, load_prompt)
from .selection import SelectionOptions, SelectionStats, Task, select_tasks
from .store import Store, digest

logger = logging.getLogger(__name__)

OK, QUARANTINED, FILTERED = "ok", "quarantined", "filtered"
FAILED = "failed"  # the LLM call failed for good: quarantined now, tried again by the next run
PIPELINE_VERSION = "1"


@dataclass
class GenerateConfig:
    """Everything a run needs. Only ``docs``, ``out`` and ``llm`` are required."""

    docs: Union[str, Path, list]
    out: Union[str, Path]
    llm: LLMSettings
    n: Optional[int] = None  # dialogues wanted; None: one per task
    concurrency: int = 8
    taxonomy: TaxonomyLike = None
    selection: SelectionOptions = field(default_factory=SelectionOptions)
    domain_method: str = "embedding"
    embedding_model: Optional[str] = None
    fixed_domain: Optional[tuple] = None  # (domain, subtopic) for domain_method="fixed"
    clip_model: Optional[str] = None
    alignment: AlignmentFilter = field(default_factory=AlignmentFilter)
    image_encoding: ImageEncoding = field(default_factory=ImageEncoding)
    prompt_version: str = "v1"
    prompt_dir: Optional[str] = None
    cache_path: Optional[Union[str, Path]] = None  # default OUT/state.sqlite
    image_root: Optional[Union[str, Path]] = None  # for relative image paths in the documents
    shard_records: int = 10_000
    price_in: float = 0.0  # per million prompt tokens
    price_out: float = 0.0  # per million completion tokens
    source_name: str = "docs"
    on_bad_document: str = "raise"  # or "skip": log, count in the manifest, go on
    progress: bool = True
    handle_signals: bool = True


@dataclass
class GenerateResult:
    out: Path
    accepted: int = 0
    quarantined: int = 0
    filtered: int = 0
    tasks: int = 0
    interrupted: bool = False
    shards: list = field(default_factory=list)
    usage: dict = field(default_factory=dict)
    totals: dict = field(default_factory=dict)
    quarantine_reasons: dict = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def data_dir(self) -> Path:
        return self.out / "data"

    def summary(self) -> str:
        if self.interrupted:
            return (f"interrupted after {self.tasks} task(s) ({self.accepted} dialogue(s) so far); "
                    "run the same command again to resume")
        reasons = ", ".join(f"{k}: {v}" for k, v in sorted(self.quarantine_reasons.items()))
        text = (f"{self.accepted} dialogue(s) written to {self.data_dir} from {self.tasks} task(s); "
                f"{self.quarantined} quarantined" + (f" ({reasons})" if reasons else "")
                + (f", {self.filtered} below the CLIP filter" if self.filtered else "")
                + f"; {self.usage.get('requests', 0)} LLM request(s) this run, "
                f"{self.usage.get('cache_hits', 0)} cache hit(s); "
                f"tokens {self.totals.get('prompt_tokens', 0)} in / {self.totals.get('completion_tokens', 0)} out")
        if self.totals.get("cost"):
            text += f", cost {self.totals['cost']:.4f}"
        return text + f"; next: mmcr build {self.data_dir} --format messages --out DIR"


class _Progress:
    def __init__(self, enabled: bool, total: Optional[int]):
        self.bar = None
        if enabled:
            try:
                from tqdm.auto import tqdm

                self.bar = tqdm(total=total, desc="generate", unit="dlg", dynamic_ncols=True)
            except ImportError:  # pragma: no cover - tqdm comes with datasets
                self.bar = None

    def update(self, accepted: bool, counts: dict) -> None:
        if self.bar is not None:
            if accepted:
                self.bar.update(1)
            self.bar.set_postfix(counts, refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class Generator:
    """One run of the pipeline; use :func:`run_generation`."""

    def __init__(self, config: GenerateConfig):
        self.cfg = config
        self.out = Path(config.out)
        self.data = self.out / "data"
        self.taxonomy = load_taxonomy(config.taxonomy)
        self.prompt = load_prompt(DIALOGUE_PROMPT, config.prompt_version, config.prompt_dir)
        check_method(config.domain_method)
        self.usage = Usage()
        self.selection_stats = SelectionStats()
        self.assigner = None
        self.scorer = None
        self.stop = False
        self.counts = {OK: 0, QUARANTINED: 0, FILTERED: 0}
        self._dirs: set = set()  # image folders known to exist

    # -- set-up ------------------------------------------------------------------------------
    def _load_models(self) -> None:
        cfg = self.cfg
        if cfg.domain_method == "embedding":
            from .domains import load_embedding_assigner

            self.assigner = load_embedding_assigner(self.taxonomy, cfg.embedding_model)
        elif cfg.domain_method == "fixed":
            if not cfg.fixed_domain:
                raise MMCRError("domain method 'fixed' needs a domain and sub-topic (--domain, --subtopic)")
            self.assigner = FixedDomainAssigner(self.taxonomy, *cfg.fixed_domain)
        else:
            self.domain_prompt = load_prompt(DOMAIN_PROMPT, cfg.prompt_version, cfg.prompt_dir)
        if cfg.clip_model:
            from .alignment import load_clip_scorer

            self.scorer = load_clip_scorer(str(cfg.clip_model))
        elif cfg.alignment.active:
            raise MMCRError("a CLIP threshold or percentile needs a CLIP model (--clip-model PATH)")

    def _fingerprints(self) -> None:
        cfg = self.cfg
        domain_fp = (self.assigner.fingerprint if self.assigner is not None
                     else f"llm:{load_prompt(DOMAIN_PROMPT, cfg.prompt_version, cfg.prompt_dir).fingerprint}")
        sel = cfg.selection
        self.dialogue_fp = digest(PIPELINE_VERSION, self.prompt.fingerprint, cfg.llm.fingerprint,
                                  cfg.image_encoding.fingerprint, self.taxonomy.fingerprint, domain_fp)
        self.run_fp = digest(self.dialogue_fp, json.dumps(asdict(sel), sort_keys=True, default=str),
                             self.scorer.fingerprint if self.scorer else "no-clip", str(cfg.alignment.threshold))
        self.config_record = {
            "pipeline_version": PIPELINE_VERSION, "prompt": self.prompt.fingerprint,
            "llm": {k: v for k, v in asdict(cfg.llm).items() if k not in ("api_key",)},
            "domain": domain_fp, "clip": self.scorer.fingerprint if self.scorer else None,
            "alignment": asdict(cfg.alignment), "selection": asdict(sel), "taxonomy": self.taxonomy.fingerprint,
            "image_encoding": asdict(cfg.image_encoding), "n": cfg.n,
        }

    # -- domain assignment -------------------------------------------------------------------
    async def _assign(self, tasks: list, loop, model_pool) -> list:
        texts = [(t.title + "\n" + t.context).strip() for t in tasks]
        if self.assigner is not None:
            keys = [digest("domain", self.assigner.fingerprint, x) for x in texts]
            found = [self.store.get_domain(k) for k in keys]
            missing = [i for i, f in enumerate(found) if f is None]
            out: list = [DomainAssignment(f[0], f[1], f[2], f[3]) if f else None for f in found]
            if missing:
                new = await loop.run_in_executor(model_pool, self.assigner.assign, [texts[i] for i in missing])
                for i, a in zip(missing, new):
                    out[i] = a
                    self.store.put_domain(keys[i], a.domain, a.subtopic, a.score, a.method)
            return out
        return list(await asyncio.gather(*[self._assign_llm(x) for x in texts]))

    async def _assign_llm(self, text: str) -> DomainAssignment:
        req = build_domain_request(text, self.taxonomy, self.domain_prompt)
        key = digest("domain-llm", req.identity, self.cfg.llm.fingerprint)
        cached = self.store.get_reply(key)
        if cached is None:
            async with self.sem:
                try:
                    reply = await self.client.complete(req.messages)
                except LLMCallError as exc:
                    return DomainAssignment(None, None, 0.0, "llm", f"domain_{exc.code}")
            self.store.put_reply(key, reply.content, reply.finish_reason, reply.prompt_tokens,
                                 reply.completion_tokens, reply.attempts)
            content = reply.content
        else:
            self.usage.cache_hits += 1
            content = cached["content"]
        return parse_domain_reply(content, self.taxonomy)

    # -- one task ----------------------------------------------------------------------------
    def _record_id(self, task: Task) -> str:
        return "gen-" + digest(self.dialogue_fp, task.key)[:20]

    def _quarantine(self, rid, seq, task, a, code, message, fresh=None, status=QUARANTINED, **extra) -> tuple:
        entry = {"id": rid, "reason": code, "message": message, "doc_id": task.doc_id, "source": task.source,
                 "group": task.group, "dialogue_type": task.dialogue_type,
                 "images": [img.name for img in task.images],
                 "domain": a.to_dict() if a is not None else None}
        entry.update(extra)
        return status, (fresh, self.run_fp, rid, seq, status, entry, {})

    async def _process(self, seq: int, task: Task, a: DomainAssignment, rid: str, loop, model_pool) -> tuple:
        """Run one task; return its status and the rows to store (see :meth:`Store.put_outcomes`).

        Nothing is written here: the main loop stores the outcomes of all tasks that finished
        together in one commit, right after they finish.
        """
        if a.problem:
            return self._quarantine(rid, seq, task, a, a.problem, "no domain could be assigned")
        req = build_dialogue_request(task, a.domain, a.subtopic, self.taxonomy, self.prompt, self.cfg.image_encoding)
        key = digest("dialogue", req.identity, self.cfg.llm.fingerprint)
        reply = self.store.get_reply(key)
        fresh = None  # a reply not yet in the cache: committed together with the outcome
        if reply is None:
            if self.stop:
                return "skipped", None
            async with self.sem:
                try:
                    r = await self.client.complete(req.messages)
                except LLMCallError as exc:
                    return self._quarantine(rid, seq, task, a, exc.code, exc.message, status=FAILED,
                                            attempts=exc.attempts)
            fresh = (key, r.content, r.finish_reason, r.prompt_tokens, r.completion_tokens, r.attempts)
            reply = {"content": r.content, "finish_reason": r.finish_reason, "prompt_tokens": r.prompt_tokens,
                     "completion_tokens": r.completion_tokens, "attempts": r.attempts}
        else:
            self.usage.cache_hits += 1
        tokens = {"prompt_tokens": reply["prompt_tokens"] or 0, "completion_tokens": reply["completion_tokens"] or 0}
        try:
            parsed = parse_dialogue(reply["content"], task, reply["finish_reason"])
        except ParseFailure as exc:
            return self._quarantine(rid, seq, task, a, exc.code, exc.message, fresh, reply=reply["content"],
                                    tokens=tokens)
        record = {
            "id": rid, "dialogue_type": task.dialogue_type, "domain": a.domain, "subtopic": a.subtopic,
            "images": [img.name for img in task.images], "messages": parsed.messages,
            "source": f"{self.cfg.source_name}:{task.doc_id}", "clip_scores": [],
        }
        issues = check_record(record, CheckContext(self.taxonomy, ValidationProfile()))
        if has_errors(issues):
            codes = sorted({i.code for i in issues})
            return self._quarantine(rid, seq, task, a, "validation", "; ".join(i.format() for i in issues[:5]),
                                    fresh, codes=codes, reply=reply["content"], tokens=tokens)
        if self.scorer is not None:
            texts = texts_per_image(parsed.messages, len(task.images))
            ckey = digest("clip", self.scorer.fingerprint, *[img.sha256 for img in task.images], *texts)
            scores = self.store.get_clip(ckey)
            if fresh is not None:  # commit the reply before waiting for the model
                self.store.put_reply(*fresh)
                fresh = None
            if scores is None:
                scores = await loop.run_in_executor(model_pool, self.scorer.score,
                                                    [img.data for img in task.images], texts)
                self.store.put_clip(ckey, scores)
            record["clip_scores"] = scores
        provenance = {"id": rid, "doc_id": task.doc_id, "source": task.source, "group": task.group,
                      "domain": a.to_dict(), "repairs": parsed.repairs, "tokens": tokens,
                      "attempts": reply["attempts"], "prompt": self.prompt.fingerprint, "model": self.cfg.llm.model,
                      "alignment": alignment_of(record["clip_scores"])}
        status = OK
        thr = self.cfg.alignment.threshold
        if thr is not None and provenance["alignment"] is not None and provenance["alignment"] < thr:
            status = FILTERED
        return status, (fresh, self.run_fp, rid, seq, status, record, provenance)

    def _next_chunk(self, tasks_iter) -> list:
        """The next tasks, with their images already in the output folder (runs in a worker thread).

        Images are written before their task runs; those of tasks that end in the quarantine are
        removed when the output is written.
        """
        chunk = list(islice(tasks_iter, 32))
        for task in chunk:
            self._write_images(task)
        return chunk

    def _write_images(self, task: Task) -> None:
        """Write a task's images under ``data/images`` (content-addressed, so never two copies).

        Written in place, without a temporary file: a write cut short by a kill leaves a file of
        the wrong size, which the size check below rewrites on the next run (and the core build
        would reject as truncated). A rename per image costs ten times the write here.
        """
        for img in task.images:
            target = self.data / img.name
            try:
                if os.stat(target).st_size == len(img.data):
                    continue
            except FileNotFoundError:
                pass
            if target.parent not in self._dirs:
                os.makedirs(target.parent, exist_ok=True)
                self._dirs.add(target.parent)
            with open(target, "wb") as fh:
                fh.write(img.data)

    # -- the run -----------------------------------------------------------------------------
    async def _run_async(self) -> bool:
        """Process tasks; return True when every needed task finished (False when stopped)."""
        cfg = self.cfg
        loop = asyncio.get_running_loop()
        self.sem = asyncio.Semaphore(max(1, cfg.concurrency))
        self.client = LLMClient(cfg.llm, self.usage)
        io_pool = ThreadPoolExecutor(1, thread_name_prefix="mmcr-docs")
        model_pool = ThreadPoolExecutor(1, thread_name_prefix="mmcr-model")
        self._install_signals(loop)
        done = self.store.done_ids(self.run_fp)
        self.bad_documents: list = []
        docs = read_documents(cfg.docs, image_root=cfg.image_root, on_bad_document=cfg.on_bad_document,
                              bad=self.bad_documents)
        tasks_iter = select_tasks(docs, cfg.selection, self.selection_stats)
        buffer: list = []
        seq = 0
        exhausted = False
        pending: dict = {}
        self.visited: list = []
        accepted = 0
        progress = _Progress(cfg.progress, cfg.n)
        fatal: Optional[BaseException] = None
        prefetch = None
        try:
            while True:
                while (not exhausted and not self.stop and fatal is None and len(pending) < cfg.concurrency
                       and (cfg.n is None or accepted + len(pending) < cfg.n)):
                    if not buffer:
                        if prefetch is None:
                            prefetch = loop.run_in_executor(io_pool, self._next_chunk, tasks_iter)
                        chunk = await prefetch
                        prefetch = None
                        if not chunk:
                            exhausted = True
                            break
                        # read the next chunk while this one runs, so slots never wait for the disk
                        prefetch = loop.run_in_executor(io_pool, self._next_chunk, tasks_iter)
                        buffer = list(zip(chunk, await self._assign(chunk, loop, model_pool)))
                        buffer.reverse()
                    task, a = buffer.pop()
                    rid = self._record_id(task)
                    self.visited.append(rid)
                    my_seq, seq = seq, seq + 1
                    if rid in done and done[rid] != FAILED:
                        status = done[rid]
                        self._count(status)
                        accepted += status == OK
                        progress.update(status == OK, self.counts)
                        continue
                    fut = asyncio.ensure_future(self._process(my_seq, task, a, rid, loop, model_pool))
                    pending[fut] = rid
                if not pending:
                    break
                finished, _ = await asyncio.wait(list(pending), return_when=asyncio.FIRST_COMPLETED)
                results = []
                for fut in finished:
                    pending.pop(fut)
                    try:
                        results.append(fut.result())
                    except Exception as exc:  # LLMFatalError, or a bug: stop cleanly, then raise
                        fatal = fatal or exc
                        self.stop = True
                # one commit for every task that finished together: replies and outcomes
                self.store.put_outcomes([rows for _, rows in results if rows is not None])
                for status, _ in results:
                    if status == "skipped":
                        continue
                    self._count(status)
                    accepted += status == OK
                    progress.update(status == OK, self.counts)
        except Exception:
            # e.g. an unreadable document: let the requests in flight finish (their replies are
            # cached, so the next run does not pay for them again), then report the error
            self.stop = True
            if pending:
                await asyncio.wait(list(pending))
                self.store.put_outcomes([f.result()[1] for f in pending
                                         if not f.cancelled() and f.exception() is None and f.result()[1] is not None])
            raise
        finally:
            if prefetch is not None:
                try:
                    await prefetch
                except Exception:  # an unread chunk's error does not matter any more
                    pass
            progress.close()
            await self.client.close()
            io_pool.shutdown(wait=True, cancel_futures=True)
            model_pool.shutdown(wait=True)
        if fatal is not None:
            raise fatal
        return not self.stop

    def _count(self, status: str) -> None:
        self.counts[status] = self.counts.get(status, 0) + 1

    def _install_signals(self, loop) -> None:
        if not self.cfg.handle_signals or threading.current_thread() is not threading.main_thread():
            return

        def on_signal(signame):
            if self.stop:  # second signal: leave at once (the cache keeps what was committed)
                os._exit(130)
            logger.warning("%s received: finishing requests in flight, then stopping", signame)
            self.stop = True

        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, on_signal, sig.name)
            except (NotImplementedError, RuntimeError):  # pragma: no cover - e.g. Windows
                pass

    # -- output ------------------------------------------------------------------------------
    def _finalize(self, result: GenerateResult) -> None:
        from ..writers import write_raw

        (self.out / "manifest.json").unlink(missing_ok=True)  # written last: its presence means complete
        visited = set(self.visited)
        cut = None
        pct = self.cfg.alignment.percentile
        if pct is not None:
            values = [prov["alignment"] for rid, status, _, prov in self.store.iter_outcomes(self.run_fp)
                      if rid in visited and status == OK and prov.get("alignment") is not None]
            cut = percentile_cut(values, pct)
        self.data.mkdir(parents=True, exist_ok=True)
        quarantine_tmp = self.out / ".quarantine.jsonl.partial"
        provenance_tmp = self.out / ".provenance.jsonl.partial"
        shard: list = []
        shards: list = []
        used_images: set = set()
        totals = {"prompt_tokens": 0, "completion_tokens": 0}

        def flush():
            path = self.data / f"part-{len(shards):05d}.jsonl"
            write_raw(shard, path, "messages")
            shards.append(path)
            shard.clear()

        with open(quarantine_tmp, "w", encoding="utf-8") as qf, open(provenance_tmp, "w", encoding="utf-8") as pf:
            for rid, status, payload, prov in self.store.iter_outcomes(self.run_fp):
                if rid not in visited:
                    continue
                tokens = prov.get("tokens") or payload.get("tokens") or {}
                for k in totals:
                    totals[k] += tokens.get(k, 0)
                if status == OK and cut is not None and prov.get("alignment") is not None and prov["alignment"] < cut:
                    status = FILTERED
                    prov = dict(prov, filtered=f"alignment below the {pct}th percentile ({cut:.4f})")
                if status == OK:
                    shard.append(payload)
                    used_images.update(payload["images"])
                    pf.write(json.dumps(prov, ensure_ascii=False) + "\n")
                    result.accepted += 1
                    if len(shard) >= self.cfg.shard_records:
                        flush()
                    continue
                if status == FILTERED:
                    result.filtered += 1
                    entry = {"id": rid, "reason": "clip_alignment", "alignment": prov.get("alignment"),
                             "threshold": self.cfg.alignment.threshold, "percentile": pct, "percentile_cut": cut,
                             "record": payload, "doc_id": prov.get("doc_id"), "source": prov.get("source")}
                else:
                    result.quarantined += 1
                    entry = payload
                    reason = payload.get("reason", "?")
                    result.quarantine_reasons[reason] = result.quarantine_reasons.get(reason, 0) + 1
                qf.write(json.dumps(entry, ensure_ascii=False) + "\n")
        if shard:
            flush()
        for old in self.data.glob("part-*.jsonl"):  # shards of an earlier, larger finalisation
            if old not in shards:
                old.unlink()
        images_dir = self.data / "images"
        if images_dir.is_dir():
            for f in images_dir.rglob("*"):
                if f.is_file() and f.relative_to(self.data).as_posix() not in used_images:
                    f.unlink()
        os.replace(quarantine_tmp, self.out / "quarantine.jsonl")
        os.replace(provenance_tmp, self.out / "provenance.jsonl")
        totals["cost"] = Usage(prompt_tokens=totals["prompt_tokens"], completion_tokens=totals["completion_tokens"]
                               ).cost(self.cfg.price_in, self.cfg.price_out)
        result.shards = [str(p) for p in shards]
        result.totals = totals

    def _write_manifest(self, result: GenerateResult) -> None:
        cfg = self.cfg
        manifest = {
            "summary": {"dialogues": result.accepted, "quarantined": result.quarantined, "filtered": result.filtered,
                        "tasks": result.tasks, "quarantine_reasons": result.quarantine_reasons},
            "usage_this_run": result.usage,
            "totals": result.totals,
            "prices_per_million_tokens": {"input": cfg.price_in, "output": cfg.price_out},
            "selection": dict(self.selection_stats.to_dict(), bad_documents=len(self.bad_documents)),
            "bad_documents": [{"source": src, "reason": why} for src, why in self.bad_documents[:100]],
            "config": self.config_record,
            "run": self.run_fp,
            "shards": [Path(s).name for s in result.shards],
            "seconds": round(result.seconds, 3),
        }
        tmp = self.out / ".manifest.json.partial"
        tmp.write_text(json.dumps(manifest, indent=2, ensure_ascii=False, default=str), encoding="utf-8")
        os.replace(tmp, self.out / "manifest.json")

    def run(self) -> GenerateResult:
        t0 = time.perf_counter()
        if isinstance(self.cfg.docs, (str, Path)):
            list_document_files(self.cfg.docs)  # fail before creating anything when the input is missing
        self.out.mkdir(parents=True, exist_ok=True)
        self._load_models()
        self._fingerprints()
        self.store = Store(self.cfg.cache_path or self.out / "state.sqlite")
        try:
            self.store.register_run(self.run_fp, self.config_record)
            complete = _run_coroutine(self._run_async)
            result = GenerateResult(self.out, tasks=len(self.visited), usage=self.usage.to_dict())
            if not complete:
                result.interrupted = True
                result.accepted = self.counts.get(OK, 0)
                return result
            self._finalize(result)
            result.seconds = time.perf_counter() - t0
            self._write_manifest(result)
            return result
        finally:
            self.store.close()


def _run_coroutine(factory):
    """``asyncio.run``, also from inside a running event loop (a notebook): then in a thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(factory())
    with ThreadPoolExecutor(1, thread_name_prefix="mmcr-generate") as pool:
        return pool.submit(asyncio.run, factory()).result()


def run_generation(config: GenerateConfig) -> GenerateResult:
    """Run (or resume) a generation; see the module docstring for the output layout."""
    if config.n is not None and config.n < 1:
        raise ValueError("n must be at least 1")
    if config.concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    return Generator(config).run()
