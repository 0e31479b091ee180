"""Shared helpers of the generation tests (imported by the test modules and conftest)."""

from __future__ import annotations

import json
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"
DOCS = DATA / "docs.jsonl"
REPO = Path(__file__).resolve().parents[2]

# Which test documents get a deliberately bad reply, chosen by a phrase of their text, and the
# quarantine reason each must end with. Every other task must become a valid dialogue.
FLAWS = {
    "Latte art": ("prose", "invalid_json"),  # coffee-003
    "Fornax": ("bad_ref", "bad_image_ref"),  # astro-007
    "Ophthalmologists": ("wrong_turns", "wrong_turn_count"),  # micro-004 (multi-image)
    "corner sign": ("truncated", "invalid_json"),  # signs-009
    "Vesuvius": ("fenced", None),  # history-006: repaired, accepted
}
BAD_DOCS = {"coffee-003": "invalid_json", "astro-007": "bad_image_ref", "micro-004": "wrong_turn_count",
            "signs-009": "invalid_json"}


def flaw_rule(text: str):
    for phrase, (flaw, _) in FLAWS.items():
        if phrase in text:
            return flaw
    return None


def read_jsonl(path: Path) -> list:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def fast_llm(base_url: str, **kw):
    from mmcr_datasets.generate.llm import LLMSettings

    kw.setdefault("backoff_base", 0.01)
    kw.setdefault("backoff_max", 0.05)
    kw.setdefault("timeout", 10.0)
    return LLMSettings(model="loopback", base_url=base_url, api_key="test-key", **kw)
