"""Calls to an OpenAI-compatible chat-completions endpoint, with retries and token accounting.

The ``openai`` client's own retries are turned off so that this module decides: rate limits
(429, honouring ``Retry-After``), server errors (5xx), timeouts, dropped connections and
unparseable response bodies are retried with exponential backoff and jitter; a request the
server rejects (400, 422) fails that task only; a bad key, a forbidden or unknown model (401,
403, 404) stops the whole run, since every later call would fail the same way.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
from dataclasses import dataclass, field
from typing import Optional

from ..errors import MMCRError, require
from ..retry import retry_after_seconds

logger = logging.getLogger(__name__)


class LLMCallError(Exception):
    """One request failed for good (after retries, or at once for a rejected request)."""

    def __init__(self, code: str, message: str, attempts: int):
        self.code, self.message, self.attempts = code, message, attempts
        super().__init__(f"{code}: {message} (after {attempts} attempt(s))")


class LLMFatalError(MMCRError):
    """The endpoint refuses this client or model; the run stops."""


@dataclass(frozen=True)
class LLMSettings:
    model: str
    base_url: Optional[str] = None
    api_key: Optional[str] = None
    temperature: float = 0.7
    max_tokens: int = 2048
    json_mode: bool = True  # response_format={"type": "json_object"}
    timeout: float = 120.0
    max_retries: int = 6
    backoff_base: float = 1.0  # seconds; doubled per retry
    backoff_max: float = 60.0
    seed: Optional[int] = None

    @property
    def fingerprint(self) -> str:
        """What changes a reply: model and sampling parameters (not URL, key or timeouts)."""
        return f"model={self.model};t={self.temperature};max={self.max_tokens};json={self.json_mode};seed={self.seed}"


@dataclass
class LLMReply:
    content: Optional[str]
    finish_reason: Optional[str]
    prompt_tokens: int = 0
    completion_tokens: int = 0
    attempts: int = 1


@dataclass
class Usage:
    """Token counts and request counts; merges across tasks."""

    requests: int = 0
    retries: int = 0
    failures: int = 0
    cache_hits: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    errors: dict = field(default_factory=dict)

    def cost(self, price_in: float = 0.0, price_out: float = 0.0) -> float:
        """Cost in the prices' currency; prices are per million tokens."""
        return self.prompt_tokens * price_in / 1e6 + self.completion_tokens * price_out / 1e6

    def to_dict(self) -> dict:
        return {"requests": self.requests, "retries": self.retries, "failures": self.failures,
                "cache_hits": self.cache_hits, "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens, "errors": dict(self.errors)}


def _retry_after(exc) -> Optional[float]:
    return retry_after_seconds(getattr(getattr(exc, "response", None), "headers", None))


class LLMClient:
    """An async client for one model. ``complete`` returns an :class:`LLMReply` or raises.

    Concurrency is bounded by the caller; the SDK's connection pool (up to 1000 connections)
    never limits it.
    """

    def __init__(self, settings: LLMSettings, usage: Optional[Usage] = None):
        openai = require("openai", feature="mmcr generate (LLM calls)", extra="generate")
        self.openai = openai
        self.settings = settings
        self.usage = usage if usage is not None else Usage()
        from openai.types.chat import ChatCompletion

        self._completion_type = ChatCompletion
        key = settings.api_key or os.environ.get("OPENAI_API_KEY") or "not-needed"
        self.client = openai.AsyncOpenAI(base_url=settings.base_url, api_key=key, timeout=settings.timeout,
                                         max_retries=0)

    async def close(self) -> None:
        await self.client.close()

    def _backoff(self, attempt: int, hint: Optional[float]) -> float:
        s = self.settings
        delay = min(s.backoff_max, s.backoff_base * (2 ** attempt))
        delay = delay * (0.5 + random.random() / 2)  # jitter: spread retries of many workers
        if hint is not None:
            delay = max(delay, min(hint, s.backoff_max))
        return delay

    async def complete(self, messages: list) -> LLMReply:
        s, o = self.settings, self.openai
        params = {"model": s.model, "messages": messages, "temperature": s.temperature, "max_tokens": s.max_tokens}
        if s.json_mode:
            params["response_format"] = {"type": "json_object"}
        if s.seed is not None:
            params["seed"] = s.seed
        attempt = 0
        while True:
            self.usage.requests += 1
            try:
                # client.post skips the SDK's per-field transform of the parameters (they are plain
                # JSON already), which costs milliseconds per request with images inlined as base64
                resp = await self.client.post("/chat/completions", body=params, cast_to=self._completion_type)
                choice = resp.choices[0]
                usage = getattr(resp, "usage", None)
                reply = LLMReply(choice.message.content, choice.finish_reason,
                                 getattr(usage, "prompt_tokens", 0) or 0, getattr(usage, "completion_tokens", 0) or 0,
                                 attempt + 1)
                self.usage.prompt_tokens += reply.prompt_tokens
                self.usage.completion_tokens += reply.completion_tokens
                return reply
            except (o.AuthenticationError, o.PermissionDeniedError, o.NotFoundError) as exc:
                raise LLMFatalError(f"the LLM endpoint refused the request ({type(exc).__name__}): {exc}; "
                                    "check --llm-base-url, --llm-model and the API key (OPENAI_API_KEY)") from None
            except (o.BadRequestError, o.UnprocessableEntityError, o.ConflictError) as exc:
                self._count_error("rejected")
                raise LLMCallError("llm_rejected", str(exc)[:300], attempt + 1) from None
            except (o.RateLimitError, o.InternalServerError, o.APIConnectionError, o.APIResponseValidationError,
                    o.APIStatusError, ValueError, IndexError, AttributeError, TypeError) as exc:
                kind = type(exc).__name__
                self._count_error(kind)
                if attempt >= s.max_retries:
                    self.usage.failures += 1
                    raise LLMCallError("llm_error", f"{kind}: {str(exc)[:300]}", attempt + 1) from None
                delay = self._backoff(attempt, _retry_after(exc))
                logger.debug("retrying after %s in %.2fs", kind, delay)
                self.usage.retries += 1
                attempt += 1
                await asyncio.sleep(delay)

    def _count_error(self, kind: str) -> None:
        self.usage.errors[kind] = self.usage.errors.get(kind, 0) + 1

