"""LLM calls: retries with backoff on transient faults, clean failures, fatal refusals, accounting."""

from __future__ import annotations

import asyncio

import pytest

for _module in ("openai", "fastapi", "uvicorn"):  # the [generate] extra and the loopback server
    pytest.importorskip(_module)

from gen_helpers import fast_llm

from mmcr_datasets.generate.llm import LLMCallError, LLMClient, LLMFatalError
from mmcr_datasets.testing.openai_server import Fault, OpenAIServer

MESSAGES = [{"role": "user", "content": "hello"}]


def _call(settings, messages=MESSAGES):
    async def go():
        client = LLMClient(settings)
        try:
            return await client.complete(messages), client.usage
        finally:
            await client.close()

    return asyncio.run(go())


@pytest.mark.parametrize("kind", ["rate_limit", "server_error", "malformed_body", "drop"])
def test_transient_faults_are_retried(kind):
    with OpenAIServer(reply=lambda body: '{"ok": true}', faults=lambda body, attempt: Fault(kind) if attempt < 2 else None) as srv:
        reply, usage = _call(fast_llm(srv.base_url))
        assert reply.content == '{"ok": true}' and reply.attempts == 3
        assert usage.retries == 2 and srv.stats.requests == 3
        assert usage.prompt_tokens > 0 and usage.completion_tokens > 0


def test_timeout_is_retried():
    with OpenAIServer(reply=lambda body: "{}", faults=lambda body, attempt: Fault("slow", seconds=2) if attempt == 0 else None) as srv:
        reply, usage = _call(fast_llm(srv.base_url, timeout=0.3))
        assert reply.attempts == 2


def test_permanent_fault_fails_the_task_after_retries():
    with OpenAIServer(faults=lambda body, attempt: Fault("server_error")) as srv:
        with pytest.raises(LLMCallError) as info:
            _call(fast_llm(srv.base_url, max_retries=2))
        assert info.value.code == "llm_error" and info.value.attempts == 3
        assert srv.stats.requests == 3


def test_bad_key_stops_the_run():
    with OpenAIServer(api_key="right") as srv:
        settings = fast_llm(srv.base_url)
        from dataclasses import replace

        with pytest.raises(LLMFatalError, match="refused"):
            _call(replace(settings, api_key="wrong"))


def test_request_carries_json_mode_and_parameters():
    with OpenAIServer(reply=lambda body: "{}") as srv:
        _call(fast_llm(srv.base_url, temperature=0.2, max_tokens=99, seed=7))
        body = srv.stats.bodies[0]
        assert body["response_format"] == {"type": "json_object"}
        assert body["temperature"] == 0.2 and body["max_tokens"] == 99 and body["seed"] == 7
