"""Calling an OpenAI-compatible chat-completions endpoint with bounded retries.

Shared by the judge and the OpenAI-compatible model adapter. The ``openai`` client's own retry
loop is switched off (``max_retries=0``) so that this module alone decides: rate limits (429),
server errors (5xx, 408, 409), timeouts, dropped connections and unreadable response bodies are
retried with exponential backoff and full jitter, honouring ``retry-after-ms`` / ``Retry-After``
when the server sends them; other client errors (400, 401, 403, 404, 422) fail at once.

API keys are handed to the ``openai`` client and nowhere else: they are never logged, stored in
results or caches, or included in error reasons.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import importlib
import inspect
import json
import logging
import os
import random
import threading
from dataclasses import dataclass, field
from typing import Any, Optional
from urllib.parse import urlsplit, urlunsplit

from ..errors import MMCRError, require
from ..retry import retry_after_seconds  # noqa: F401  (also imported from here by callers)

logger = logging.getLogger(__name__)

RETRYABLE_STATUS = {408, 409, 425, 429}
_JSON_HEADERS = {"Content-Type": "application/json"}


@dataclass(frozen=True)
class RetryPolicy:
    """How long to wait for one call and how to retry it.

    ``timeout``: seconds per attempt. ``max_retries``: retries after the first attempt.
    The n-th wait is uniform in [0, min(backoff_max, backoff_base * 2**n)] (full jitter); a server
    hint (``retry-after-ms`` or ``Retry-After``) replaces it, capped at ``max_retry_after``.
    """

    max_retries: int = 6
    timeout: float = 60.0
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    max_retry_after: float = 120.0


@dataclass
class CallOutcome:
    """The result of :func:`call_chat`: a response, or the reason the call gave up."""

    response: Any = None
    error: Optional[str] = None
    attempts: int = 0
    waited: float = 0.0
    retried: dict = field(default_factory=dict)


def backoff_delay(policy: RetryPolicy, retry_index: int, hint: Optional[float], rng: random.Random) -> float:
    """Seconds to wait before retry number ``retry_index`` (0-based)."""
    if hint is not None:
        return min(hint, policy.max_retry_after) + rng.uniform(0, min(policy.backoff_base, 0.1 * hint + 1e-3))
    cap = min(policy.backoff_max, policy.backoff_base * (2 ** retry_index))
    return rng.uniform(0, cap)


def classify_error(exc: BaseException) -> tuple[bool, str, Optional[float]]:
    """(retryable, short reason, server wait hint) for an exception raised by the ``openai`` client."""
    import openai

    if isinstance(exc, openai.APITimeoutError):
        return True, "timeout", None
    if isinstance(exc, openai.APIConnectionError):
        return True, "connection_error", None
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        hint = retry_after_seconds(getattr(exc.response, "headers", None))
        if status == 429:
            return True, "rate_limited", hint
        if status >= 500 or status in RETRYABLE_STATUS:
            return True, f"http_{status}", hint
        return False, f"http_{status}", None
    if isinstance(exc, (openai.APIResponseValidationError, ValueError)):
        # A 200 whose body is not the expected JSON (json.JSONDecodeError is a ValueError).
        return True, "malformed_response", None
    return False, f"error_{type(exc).__name__}", None


@functools.lru_cache(maxsize=None)
def _post_takes_content(client_type) -> bool:
    return "content" in inspect.signature(client_type.post).parameters


def _takes_content(client) -> bool:
    return _post_takes_content(type(client))


def completion_content(response) -> str:
    """The assistant text of a chat-completion response body (a dict); ``ValueError`` if it has none."""
    try:
        content = response["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise ValueError("the response body has no choices[0].message") from None
    return content if isinstance(content, str) else ""


def completion_usage(response) -> tuple[int, int]:
    """(prompt_tokens, completion_tokens) of a response body; zeros when the server reports none."""
    usage = response.get("usage") if isinstance(response, dict) else None
    if not isinstance(usage, dict):
        return 0, 0
    return int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)


async def call_chat(client, payload: dict, policy: RetryPolicy, rng: Optional[random.Random] = None) -> CallOutcome:
    """POST ``payload`` to ``/chat/completions`` with the retry policy; never raises for API errors.

    ``CallOutcome.response`` is the decoded JSON body (a dict) of a successful call.
    """
    rng = rng or random.Random()
    outcome = CallOutcome()
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")  # serialised once, for every attempt
    for attempt in range(policy.max_retries + 1):
        outcome.attempts = attempt + 1
        try:
            # The client's generic POST: same auth, headers and typed errors as
            # ``chat.completions.create``, without its per-call request-params transformation and
            # pydantic response model, which cost milliseconds of CPU per call at high concurrency.
            if _takes_content(client):
                response = await client.post("/chat/completions", cast_to=object, content=body,
                                             options={"timeout": policy.timeout, "headers": _JSON_HEADERS})
            else:  # older openai releases: post() serialises the dict itself
                response = await client.post("/chat/completions", cast_to=object, body=payload,
                                             options={"timeout": policy.timeout})
            completion_content(response)  # raises ValueError on a body without a message
            outcome.response = response
            outcome.error = None
            return outcome
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - classified below, never re-raised
            retryable, reason, hint = classify_error(exc)
            outcome.error = reason
            outcome.retried[reason] = outcome.retried.get(reason, 0) + 1
            if not retryable or attempt == policy.max_retries:
                logger.debug("chat call gave up after %d attempt(s): %s", attempt + 1, reason)
                return outcome
            delay = backoff_delay(policy, attempt, hint, rng)
            logger.debug("chat call attempt %d failed (%s); retrying in %.3fs", attempt + 1, reason, delay)
            outcome.waited += delay
            await asyncio.sleep(delay)
    return outcome


def resolve_endpoint(base_url: Optional[str], api_key: Optional[str], *, base_url_envs: tuple,
                     api_key_envs: tuple, what: str) -> tuple[Optional[str], str]:
    """The base URL and API key from arguments, then environment variables.

    A local server (vLLM, SGLang, the loopback test server) usually ignores the key, so with a base
    URL and no key the placeholder ``"EMPTY"`` is used; without either, the error names the
    variables to set. The key itself never appears in a message.
    """
    for env in base_url_envs:
        base_url = base_url or os.environ.get(env) or None
    for env in api_key_envs:
        api_key = api_key or os.environ.get(env) or None
    if api_key is None:
        if base_url is None:
            raise MMCRError(f"{what}: no API key; set {' or '.join(api_key_envs)}, or give a base URL of a "
                            f"server that needs none")
        api_key = "EMPTY"
    return base_url, api_key


def redact_url(url: Optional[str]) -> Optional[str]:
    """The URL without user:password and without a query string (where tokens sometimes hide)."""
    if not url:
        return url
    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def make_async_client(base_url: Optional[str], api_key: str, connections: int):
    """An ``openai.AsyncOpenAI`` with retries off and a pool of ``connections`` keep-alive connections."""
    openai = require("openai", feature="the MMCR-Bench judge and OpenAI-compatible models", extra="eval")
    connections = max(connections, 1) + 2
    # openai<3 is built on httpx, openai>=3 on httpx2: take Limits from the library openai uses.
    base = next(c for c in openai.DefaultAsyncHttpxClient.__mro__ if c.__name__ == "AsyncClient")
    http = importlib.import_module(base.__module__.split(".")[0])
    limits = http.Limits(max_connections=connections, max_keepalive_connections=connections)
    http_client = openai.DefaultAsyncHttpxClient(limits=limits)
    return openai.AsyncOpenAI(base_url=base_url, api_key=api_key, max_retries=0, http_client=http_client)


async def run_workers(jobs: list, concurrency: int, client, handle) -> None:
    """Run ``await handle(client, job)`` for every job with ``concurrency`` workers sharing one client.

    Workers pull jobs from one queue, so at most ``concurrency`` calls are in flight and no task
    is created per job. (Measured on the loopback benchmark: one client with a pool of
    ``concurrency`` connections costs no more CPU per call than several smaller pools.)
    """
    queue = collections.deque(jobs)

    async def worker():
        while queue:
            await handle(client, queue.popleft())

    await asyncio.gather(*(worker() for _ in range(min(max(1, concurrency), len(jobs)))))


def run_coroutine(coro):
    """Run a coroutine to completion from synchronous code, even inside a running event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    box: dict = {}

    def target():
        try:
            box["value"] = asyncio.run(coro)
        except BaseException as exc:  # noqa: BLE001 - handed back to the caller
            box["error"] = exc

    thread = threading.Thread(target=target, name="mmcr-eval-loop")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]
