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
import email.utils
import logging
import os
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Optional
from urllib.parse import urlsplit, urlunsplit

from ..errors import MMCRError, require

logger = logging.getLogger(__name__)

RETRYABLE_STATUS = {408, 409, 425, 429}


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


def retry_after_seconds(headers) -> Optional[float]:
    """The server's wait hint in seconds, from ``retry-after-ms`` or ``Retry-After`` (seconds or a date)."""
    if headers is None:
        return None
    value = headers.get("retry-after-ms")
    if value:
        try:
            return max(0.0, float(value) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        if parsed is None:
            return None
        return max(0.0, parsed.timestamp() - time.time())


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


async def call_chat(client, payload: dict, policy: RetryPolicy, rng: Optional[random.Random] = None) -> CallOutcome:
    """``client.chat.completions.create(**payload)`` with the retry policy; never raises for API errors."""
    rng = rng or random.Random()
    outcome = CallOutcome()
    for attempt in range(policy.max_retries + 1):
        outcome.attempts = attempt + 1
        try:
            response = await client.chat.completions.create(**payload, timeout=policy.timeout)
            if not getattr(response, "choices", None):
                raise ValueError("response has no choices")
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


def make_async_client(base_url: Optional[str], api_key: str, concurrency: int):
    """An ``openai.AsyncOpenAI`` with retries off and a connection pool sized for ``concurrency``."""
    openai = require("openai", feature="the MMCR-Bench judge and OpenAI-compatible models", extra="eval")
    httpx = require("httpx", feature="the MMCR-Bench judge and OpenAI-compatible models", extra="eval")
    limits = httpx.Limits(max_connections=max(concurrency, 1) + 4, max_keepalive_connections=max(concurrency, 1) + 4)
    http_client = openai.DefaultAsyncHttpxClient(limits=limits)
    return openai.AsyncOpenAI(base_url=base_url, api_key=api_key, max_retries=0, http_client=http_client)


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
