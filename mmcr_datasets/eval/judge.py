"""The LLM judge: a versioned rubric prompt, an OpenAI-compatible client, robust parsing, a cache.

The judge sees the conversation the model saw, the latest question, the reference answer and the
model's reply (optionally the images too), and answers with one JSON object of six integer
scores 1..10: the five MMCR contextual-reasoning dimensions and an overall score.

Parsing never evaluates code: the reply is read with :func:`json.loads` (after removing a Markdown
code fence), then the first complete JSON object inside the text, then a strict ``"key": number``
scan that accepts the reply only if every key appears exactly once. Scores outside 1..10, missing
keys and non-numbers make the judgement *unparsed*, with the reason recorded.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import re
import string
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Callable, Optional, Sequence

from ..errors import MMCRError
from .client import (RetryPolicy, call_chat, completion_content, completion_usage, make_async_client,
                     redact_url, resolve_endpoint, run_coroutine, run_workers)

logger = logging.getLogger(__name__)

DIMENSIONS = ("precision", "reference_consistency", "logical_relationship", "theme_clarity", "non_redundancy")
SCORE_KEYS = DIMENSIONS + ("overall",)
DIMENSION_TITLES = {
    "precision": "Precision & Conciseness",
    "reference_consistency": "Consistency of Contextual References",
    "logical_relationship": "Logical Contextual Relationship",
    "theme_clarity": "Clarity of Dialogue Theme",
    "non_redundancy": "Absence of Redundancy",
    "overall": "Overall",
}
DEFAULT_PROMPT = "judge-v1"
SCORE_MIN, SCORE_MAX = 1, 10


# -- prompt ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class JudgePrompt:
    """A rubric prompt: ``[system]`` and ``[user]`` templates with ``$history``, ``$question``,
    ``$reference`` and ``$answer``. ``sha`` hashes the text, so an edited file changes cache keys."""

    version: str
    system: str
    user: str

    @property
    def sha(self) -> str:
        return hashlib.sha256((self.system + "\x00" + self.user).encode()).hexdigest()[:16]

    def render(self, *, history: str, question: str, reference: str, answer: str) -> tuple[str, str]:
        values = {"history": history, "question": question, "reference": reference, "answer": answer}
        return (string.Template(self.system).safe_substitute(values),
                string.Template(self.user).safe_substitute(values))


def parse_prompt_text(text: str, version: str) -> JudgePrompt:
    sections: dict = {}
    current = None
    for line in text.splitlines():
        if line.startswith("#") and current is None:
            continue
        tag = line.strip().lower()
        if tag in ("[system]", "[user]"):
            current = tag[1:-1]
            sections[current] = []
            continue
        if current is not None:
            sections[current].append(line)
    if "user" not in sections:
        raise MMCRError(f"judge prompt {version!r} has no [user] section")
    return JudgePrompt(version, "\n".join(sections.get("system", [])).strip(), "\n".join(sections["user"]).strip())


def load_prompt(prompt: str | Path | JudgePrompt = DEFAULT_PROMPT) -> JudgePrompt:
    """A packaged prompt by version (``"judge-v1"``), or a prompt file of the same layout."""
    if isinstance(prompt, JudgePrompt):
        return prompt
    path = Path(prompt)
    if path.suffix and path.is_file():
        return parse_prompt_text(path.read_text(encoding="utf-8"), path.stem)
    name = str(prompt).replace("-", "_") + ".txt"
    try:
        text = resources.files("mmcr_datasets.eval").joinpath("prompts", name).read_text(encoding="utf-8")
    except FileNotFoundError:
        available = sorted(p.name[:-4].replace("_", "-") for p in
                           resources.files("mmcr_datasets.eval").joinpath("prompts").iterdir() if p.name.endswith(".txt"))
        raise MMCRError(f"no packaged judge prompt {prompt!r}; available: {available}, or pass a file path") from None
    return parse_prompt_text(text, str(prompt))


# -- parsing ----------------------------------------------------------------------------------
_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.S | re.I)


def _first_object(text: str) -> Optional[dict]:
    decoder = json.JSONDecoder()
    for i, ch in enumerate(text):
        if ch == "{":
            try:
                obj, _ = decoder.raw_decode(text, i)
            except ValueError:
                continue
            if isinstance(obj, dict):
                return obj
    return None


def _key_scan(text: str) -> Optional[dict]:
    found = {}
    for key in SCORE_KEYS:
        matches = re.findall(r'["\']?\b' + key + r'\b["\']?\s*[:=]\s*(-?\d+(?:\.\d+)?)', text)
        if len(matches) != 1:
            return None
        found[key] = float(matches[0]) if "." in matches[0] else int(matches[0])
    return found


def _number(value) -> Optional[float]:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def parse_judgement(text: Optional[str]) -> tuple[Optional[dict], Optional[str]]:
    """``(scores, None)`` for a valid reply, else ``(None, reason)``. Scores are floats in 1..10."""
    if text is None or not text.strip():
        return None, "empty_reply"
    body = text.strip()
    m = _FENCE.match(body)
    if m:
        body = m.group(1)
    obj = None
    try:
        loaded = json.loads(body)
        obj = loaded if isinstance(loaded, dict) else None
    except ValueError:
        pass
    if obj is None:
        obj = _first_object(body)
    if obj is None:
        obj = _key_scan(body)
        if obj is None:
            return None, "no_json_object"
    scores, problems = {}, []
    lowered = {str(k).strip().lower(): v for k, v in obj.items()}
    for key in SCORE_KEYS:
        if key not in lowered:
            problems.append(f"missing:{key}")
            continue
        value = _number(lowered[key])
        if value is None:
            problems.append(f"not_a_number:{key}")
        elif not SCORE_MIN <= value <= SCORE_MAX:
            problems.append(f"out_of_range:{key}={value:g}")
        else:
            scores[key] = value
    if problems:
        return None, ";".join(problems)
    return scores, None


# -- judging -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class JudgeItem:
    """Everything the judge is asked about one turn. ``images``: ImageRefs sent when enabled."""

    dialogue_id: str
    turn: int
    history: str
    question: str
    reference: str
    answer: str
    images: tuple = field(default=(), repr=False)


@dataclass
class Judgement:
    """A judge outcome. ``status``: ``ok``, ``unparsed`` (the reply was unusable) or ``failed``
    (the call itself failed after every retry; not cached, retried on the next run)."""

    dialogue_id: str
    turn: int
    key: str
    status: str
    scores: Optional[dict] = None
    reason: Optional[str] = None
    raw: Optional[str] = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    attempts: int = 0
    cached: bool = False

    @property
    def parsed(self) -> bool:
        return self.status == "ok"

    @property
    def overall(self) -> Optional[float]:
        return self.scores["overall"] if self.scores else None


@dataclass(frozen=True)
class JudgeConfig:
    """Judge settings. The base URL comes from the option, ``MMCR_JUDGE_BASE_URL`` or
    ``OPENAI_BASE_URL``; the key from the option, ``MMCR_JUDGE_API_KEY`` or ``OPENAI_API_KEY``.
    Prices are USD per million tokens (cost is reported only when both are set)."""

    model: str
    base_url: Optional[str] = None
    api_key: Optional[str] = field(default=None, repr=False)
    temperature: float = 0.0
    max_tokens: int = 400
    send_images: bool = False
    concurrency: int = 8
    retry: RetryPolicy = RetryPolicy()
    parse_retries: int = 1
    prompt: str = DEFAULT_PROMPT
    price_input_per_mtok: Optional[float] = None
    price_output_per_mtok: Optional[float] = None
    seed: Optional[int] = None

    def public(self) -> dict:
        """A description safe to write into results (no key; URL without credentials)."""
        return {"model": self.model, "base_url": redact_url(self.base_url), "temperature": self.temperature,
                "max_tokens": self.max_tokens, "send_images": self.send_images, "concurrency": self.concurrency,
                "parse_retries": self.parse_retries, "prompt": self.prompt,
                "price_input_per_mtok": self.price_input_per_mtok,
                "price_output_per_mtok": self.price_output_per_mtok,
                "retry": {"max_retries": self.retry.max_retries, "timeout": self.retry.timeout,
                          "backoff_base": self.retry.backoff_base, "backoff_max": self.retry.backoff_max}}


@dataclass
class Accounting:
    """Calls and tokens of one judging session; cached judgements cost nothing."""

    calls: int = 0
    attempts: int = 0
    cached: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    retried: dict = field(default_factory=dict)

    def cost(self, config: JudgeConfig) -> Optional[float]:
        if config.price_input_per_mtok is None or config.price_output_per_mtok is None:
            return None
        return (self.prompt_tokens * config.price_input_per_mtok
                + self.completion_tokens * config.price_output_per_mtok) / 1e6

    def to_dict(self, config: JudgeConfig) -> dict:
        return {"calls": self.calls, "attempts": self.attempts, "cached": self.cached,
                "prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "retried": dict(self.retried), "cost_usd": self.cost(config)}


class Judge:
    """Judge turns concurrently through an OpenAI-compatible endpoint, with an optional cache.

    >>> judge = Judge(JudgeConfig(model="gpt-4o"), store=EvalStore("cache.sqlite"))
    >>> judgements = judge.judge_many(items)
    """

    def __init__(self, config: JudgeConfig, store=None):
        self.config = config
        self.prompt = load_prompt(config.prompt)
        self.store = store
        self.accounting = Accounting()
        # Resolve now so a missing key fails before any work; the key stays in memory only.
        self._base_url, self._api_key = resolve_endpoint(
            config.base_url, config.api_key, base_url_envs=("MMCR_JUDGE_BASE_URL", "OPENAI_BASE_URL"),
            api_key_envs=("MMCR_JUDGE_API_KEY", "OPENAI_API_KEY"), what="the judge")

    def __repr__(self) -> str:
        return f"Judge(model={self.config.model!r}, base_url={redact_url(self._base_url)!r}, prompt={self.prompt.version!r})"

    @property
    def base_url(self) -> Optional[str]:
        return redact_url(self._base_url)

    def build_payload(self, item: JudgeItem) -> dict:
        from .bench import data_uri

        system, user = self.prompt.render(history=item.history, question=item.question,
                                          reference=item.reference, answer=item.answer)
        if self.config.send_images and item.images:
            content = [{"type": "text", "text": user}]
            content += [{"type": "image_url", "image_url": {"url": data_uri(ref)}} for ref in item.images]
        else:
            content = user
        messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": content}]
        payload = {"model": self.config.model, "messages": messages, "temperature": self.config.temperature,
                   "max_tokens": self.config.max_tokens}
        if self.config.seed is not None:
            payload["seed"] = self.config.seed
        return payload

    def cache_key(self, payload: dict) -> str:
        """A hash of every judge input: prompt version and text hash, model, parameters, messages."""
        blob = json.dumps({"prompt_version": self.prompt.version, "prompt_sha": self.prompt.sha, "payload": payload},
                          sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(blob.encode()).hexdigest()

    def judge_many(self, items: Sequence[JudgeItem], on_result: Optional[Callable[[Judgement], None]] = None
                   ) -> list[Judgement]:
        """Judge every item (cached ones are not sent); results in the order of ``items``."""
        return run_coroutine(self.ajudge_many(items, on_result))

    async def ajudge_many(self, items: Sequence[JudgeItem], on_result=None) -> list[Judgement]:
        results: list = [None] * len(items)
        pending, waiting = [], {}
        payloads = [self.build_payload(item) for item in items]
        keys = [self.cache_key(payload) for payload in payloads]
        cached = self.store.get_judgements(keys) if self.store is not None else {}
        for i, (item, payload, key) in enumerate(zip(items, payloads, keys)):
            hit = cached.get(key)
            if hit is not None:
                j = Judgement(item.dialogue_id, item.turn, key, hit["status"], hit["scores"], hit["reason"],
                              hit["raw"], hit["prompt_tokens"], hit["completion_tokens"], hit["attempts"], cached=True)
                self.accounting.cached += 1
                results[i] = j
                if on_result:
                    on_result(j)
            elif key in waiting:  # the very same judge input twice: ask once, answer both
                waiting[key].append(i)
            else:
                waiting[key] = []
                pending.append((i, item, payload, key))
        if not pending:
            return results
        client = make_async_client(self._base_url, self._api_key, self.config.concurrency)
        rng = random.Random(0)

        async def handle(client, job):
            i, item, payload, key = job
            j = await self._judge_one(client, item, payload, key, rng)
            results[i] = j
            if on_result:
                on_result(j)
            for other in waiting[key]:
                copy = replace(j, dialogue_id=items[other].dialogue_id, turn=items[other].turn, cached=True)
                results[other] = copy
                if on_result:
                    on_result(copy)

        try:
            await run_workers(pending, self.config.concurrency, client, handle)
        finally:
            await client.close()
            if self.store is not None:
                self.store.flush()
        return results

    async def _judge_one(self, client, item: JudgeItem, payload: dict, key: str, rng) -> Judgement:
        acc = self.accounting
        attempts, pt, ct = 0, 0, 0
        reason, raw = None, None
        for _ in range(self.config.parse_retries + 1):
            outcome = await call_chat(client, payload, self.config.retry, rng)
            attempts += outcome.attempts
            acc.attempts += outcome.attempts
            for r, n in outcome.retried.items():
                acc.retried[r] = acc.retried.get(r, 0) + n
            if outcome.response is None:
                acc.calls += 1
                acc.prompt_tokens += pt
                acc.completion_tokens += ct
                return Judgement(item.dialogue_id, item.turn, key, "failed", None, f"call_failed:{outcome.error}",
                                 None, pt, ct, attempts)
            p_tokens, c_tokens = completion_usage(outcome.response)
            pt += p_tokens
            ct += c_tokens
            raw = completion_content(outcome.response)
            scores, reason = parse_judgement(raw)
            if scores is not None:
                break
            acc.retried["unparsed_reply"] = acc.retried.get("unparsed_reply", 0) + 1
        acc.calls += 1
        acc.prompt_tokens += pt
        acc.completion_tokens += ct
        status = "ok" if reason is None else "unparsed"
        j = Judgement(item.dialogue_id, item.turn, key, status, scores if status == "ok" else None, reason, raw,
                      pt, ct, attempts)
        if self.store is not None:
            self.store.put_judgement(key, dialogue_id=item.dialogue_id, turn=item.turn, status=status,
                                     scores=j.scores, reason=reason, raw=raw, prompt_version=self.prompt.version,
                                     judge_model=self.config.model, prompt_tokens=pt, completion_tokens=ct,
                                     attempts=attempts)
        return j
