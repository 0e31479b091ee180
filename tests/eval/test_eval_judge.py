"""The judge: prompt files, reply parsing, retry hints, cache keys, and every injected fault."""

from __future__ import annotations

import json

import pytest

from mmcr_datasets.eval.client import RetryPolicy, backoff_delay, redact_url, retry_after_seconds
from mmcr_datasets.eval.judge import (SCORE_KEYS, Judge, JudgeConfig, JudgeItem, load_prompt, parse_judgement)
from mmcr_datasets.eval.store import EvalStore
from mmcr_datasets.testing.openai_server import Fault, FaultPlan, OpenAIServer, judge_reply

GOOD = {"precision": 7, "reference_consistency": 8, "logical_relationship": 6, "theme_clarity": 9,
        "non_redundancy": 5, "overall": 7}


def test_packaged_prompt_has_both_sections_and_all_placeholders():
    prompt = load_prompt("judge-v1")
    assert prompt.version == "judge-v1" and len(prompt.sha) == 16
    for key in SCORE_KEYS:
        assert key in prompt.system
    system, user = prompt.render(history="H", question="Q?", reference="R.", answer="A.")
    assert "$" not in user and "Q?" in user and "R." in user and "A." in user
    assert not system.startswith("#")


def test_prompt_file_path_and_unknown_version(tmp_path):
    path = tmp_path / "my_rubric.txt"
    path.write_text("[system]\nBe fair.\n[user]\n$question -> $answer\n", encoding="utf-8")
    prompt = load_prompt(path)
    assert prompt.version == "my_rubric" and prompt.render(history="", question="q", reference="", answer="a")[1] == "q -> a"
    with pytest.raises(Exception, match="judge-v1"):
        load_prompt("judge-v999")


@pytest.mark.parametrize("text", [
    json.dumps(GOOD),
    "```json\n" + json.dumps(GOOD) + "\n```",
    "Here is my verdict: " + json.dumps(GOOD) + " Thanks.",
    "precision: 7, reference_consistency: 8, logical_relationship: 6, theme_clarity: 9, non_redundancy: 5, overall: 7",
    json.dumps({k: str(v) for k, v in GOOD.items()}),
])
def test_parse_accepts_json_fenced_embedded_and_strict_key_scan(text):
    scores, reason = parse_judgement(text)
    assert reason is None and scores["overall"] == 7.0 and set(scores) == set(SCORE_KEYS)


@pytest.mark.parametrize("text, reason", [
    (None, "empty_reply"),
    ("   ", "empty_reply"),
    ("The answer is good.", "no_json_object"),
    (json.dumps(GOOD)[:30], "no_json_object"),
    (json.dumps({**GOOD, "overall": 11}), "out_of_range:overall=11"),
    (json.dumps({**GOOD, "precision": 0}), "out_of_range:precision=0"),
    (json.dumps({k: v for k, v in GOOD.items() if k != "overall"}), "missing:overall"),
    (json.dumps({**GOOD, "overall": True}), "not_a_number:overall"),
    (json.dumps({**GOOD, "overall": "__import__('os').system('false')"}), "not_a_number:overall"),
    ("overall: 7, overall: 8", "no_json_object"),
])
def test_parse_rejects_with_a_reason_and_never_evaluates(text, reason):
    scores, why = parse_judgement(text)
    assert scores is None and why == reason


def test_retry_after_headers_and_backoff():
    assert retry_after_seconds({"retry-after-ms": "250"}) == 0.25
    assert retry_after_seconds({"retry-after": "3"}) == 3.0
    assert retry_after_seconds({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0
    assert retry_after_seconds({}) is None
    import random

    policy = RetryPolicy(backoff_base=1.0, backoff_max=4.0, max_retry_after=10.0)
    rng = random.Random(0)
    assert all(0 <= backoff_delay(policy, n, None, rng) <= min(4.0, 2 ** n) for n in range(6))
    assert 2.0 <= backoff_delay(policy, 0, 2.0, rng) <= 3.0          # a server hint wins over the backoff
    assert 10.0 <= backoff_delay(policy, 0, 99.0, rng) <= 11.0       # capped


def test_redact_url_drops_credentials_and_query():
    assert redact_url("https://user:sk-secret@api.example.com:8443/v1?key=sk-secret") == "https://api.example.com:8443/v1"


def _item(answer="It is a cat.", images=()):
    return JudgeItem("d1", 0, "(no earlier turns)", "[image 1] What is it?", "A cat.", answer, images)


def test_cache_key_covers_every_input(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    base = Judge(JudgeConfig(model="j", base_url="http://127.0.0.1:9/v1"))
    key = base.cache_key(base.build_payload(_item()))
    assert key == base.cache_key(base.build_payload(_item()))
    assert key != base.cache_key(base.build_payload(_item(answer="A dog.")))
    other_model = Judge(JudgeConfig(model="j2", base_url="http://127.0.0.1:9/v1"))
    assert key != other_model.cache_key(other_model.build_payload(_item()))
    other_key = Judge(JudgeConfig(model="j", base_url="http://127.0.0.1:9/v1", api_key="sk-different"))
    assert key == other_key.cache_key(other_key.build_payload(_item())), "the key must not depend on the API key"
    from mmcr_datasets.records import ImageRef

    with_images = Judge(JudgeConfig(model="j", base_url="http://127.0.0.1:9/v1", send_images=True))
    k1 = with_images.cache_key(with_images.build_payload(_item(images=(ImageRef(None, b"\xff\xd8\xff1"),))))
    k2 = with_images.cache_key(with_images.build_payload(_item(images=(ImageRef(None, b"\xff\xd8\xff2"),))))
    assert k1 != k2


def test_missing_key_without_base_url_names_the_variables(monkeypatch):
    for var in ("OPENAI_API_KEY", "MMCR_JUDGE_API_KEY", "OPENAI_BASE_URL", "MMCR_JUDGE_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(Exception, match="MMCR_JUDGE_API_KEY or OPENAI_API_KEY"):
        Judge(JudgeConfig(model="gpt-4o"))


TRANSPORT = ["rate_limit", "server_error", "slow", "drop", "malformed_body"]
CONTENT = {"partial_json": "no_json_object", "malformed_content": "no_json_object",
           "out_of_range": "out_of_range:precision=0;out_of_range:overall=11"}


@pytest.mark.parametrize("kind", TRANSPORT + list(CONTENT))
def test_transient_faults_are_retried_to_a_parsed_judgement(kind, fast_retry):
    plan = FaultPlan({kind: 1.0}, times=1, seconds=0.4, retry_after=0.01)
    with OpenAIServer(reply=judge_reply, faults=plan) as server:
        judge = Judge(JudgeConfig(model="j", base_url=server.base_url, retry=fast_retry))
        (j,) = judge.judge_many([_item()])
    assert j.status == "ok" and j.reason is None, (kind, j)
    assert server.stats.faults[kind] == 1 and server.stats.requests == 2


@pytest.mark.parametrize("kind", TRANSPORT)
def test_persistent_transport_faults_end_as_failed_with_reason(kind, tmp_path):
    policy = RetryPolicy(max_retries=2, timeout=0.15, backoff_base=0.005, backoff_max=0.01, max_retry_after=0.02)
    plan = FaultPlan({kind: 1.0}, times=None, seconds=0.3, retry_after=0.01)
    store = EvalStore(tmp_path / "c.sqlite")
    with OpenAIServer(reply=judge_reply, faults=plan) as server:
        judge = Judge(JudgeConfig(model="j", base_url=server.base_url, retry=policy), store=store)
        (j,) = judge.judge_many([_item()])
    expected = {"rate_limit": "rate_limited", "server_error": "http_500", "slow": "timeout",
                "drop": "connection_error", "malformed_body": "malformed_response"}[kind]
    assert j.status == "failed" and j.reason == f"call_failed:{expected}" and j.attempts == 3
    assert store.count_judgements() == 0, "a failed call is not cached, so the next run retries it"


@pytest.mark.parametrize("kind", list(CONTENT))
def test_persistent_bad_replies_are_unparsed_with_reason_and_cached(kind, tmp_path, fast_retry):
    plan = FaultPlan({kind: 1.0}, times=None)
    store = EvalStore(tmp_path / "c.sqlite")
    with OpenAIServer(reply=judge_reply, faults=plan) as server:
        judge = Judge(JudgeConfig(model="j", base_url=server.base_url, retry=fast_retry, parse_retries=1), store=store)
        (j,) = judge.judge_many([_item()])
        assert server.stats.requests == 2  # one re-ask after an unusable reply
        (again,) = judge.judge_many([_item()])
        assert server.stats.requests == 2 and again.cached
    assert j.status == "unparsed" and j.reason == CONTENT[kind] and j.scores is None and j.raw
    assert store.count_judgements() == 1 and again.reason == j.reason


def test_rate_limit_honours_the_server_hint(fast_retry):
    import time

    policy = RetryPolicy(max_retries=2, timeout=1.0, backoff_base=0.001, backoff_max=0.001, max_retry_after=5.0)
    plan = FaultPlan({"rate_limit": 1.0}, times=1, retry_after=0.3)
    with OpenAIServer(reply=judge_reply, faults=plan) as server:
        judge = Judge(JudgeConfig(model="j", base_url=server.base_url, retry=policy))
        start = time.monotonic()
        (j,) = judge.judge_many([_item()])
        elapsed = time.monotonic() - start
    assert j.status == "ok" and elapsed >= 0.3
    assert judge.accounting.retried == {"rate_limited": 1}


def test_accounting_and_cost(judge_server):
    judge = Judge(JudgeConfig(model="j", base_url=judge_server.base_url, price_input_per_mtok=2.5,
                              price_output_per_mtok=10.0, concurrency=4))
    items = [_item(answer=f"answer {i}") for i in range(6)]
    results = judge.judge_many(items)
    assert [r.turn for r in results] == [0] * 6 and all(r.status == "ok" for r in results)
    acc = judge.accounting.to_dict(judge.config)
    assert acc["calls"] == 6 and acc["prompt_tokens"] > 0 and acc["completion_tokens"] > 0
    assert acc["cost_usd"] == pytest.approx((acc["prompt_tokens"] * 2.5 + acc["completion_tokens"] * 10) / 1e6)


def test_fault_kind_validation():
    with pytest.raises(ValueError):
        Fault("explode")
    with pytest.raises(ValueError):
        FaultPlan({"drop": 0.7, "slow": 0.5})


def test_identical_inputs_in_one_batch_are_asked_once(judge_server):
    judge = Judge(JudgeConfig(model="j", base_url=judge_server.base_url, concurrency=4))
    twin = JudgeItem("d2", 3, "(no earlier turns)", "[image 1] What is it?", "A cat.", "It is a cat.")
    first, second = judge.judge_many([_item(), twin])
    assert judge_server.stats.requests == 1 and first.scores == second.scores
    assert (second.dialogue_id, second.turn, second.cached) == ("d2", 3, True)
