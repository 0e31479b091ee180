"""MMCR-Bench evaluation with an LLM judge (the ``[eval]`` extra).

>>> from mmcr_datasets.eval import evaluate, JudgeConfig, OpenAIChatModel
>>> result = evaluate("mmcr/bench", OpenAIChatModel("my-vlm", base_url="http://localhost:8000/v1"),
...                   JudgeConfig(model="gpt-4o"), history="reference", out="runs/my-vlm")
>>> result.scores["contextual_accuracy"]

Pieces: :mod:`.bench` (dialogues -> per-turn requests), :mod:`.models` (adapters for the evaluated
model), :mod:`.judge` (rubric prompt, client, parsing), :mod:`.store` (the SQLite cache that makes
runs resumable), :mod:`.scoring` (contextual accuracy, bootstrap intervals, paired comparison),
:mod:`.report` (JSON / markdown / PNG), :mod:`.exports` (lmms-eval task folder, VLMEvalKit TSV).

Importing this package is light; ``openai``, ``httpx``, ``torch`` and ``transformers`` are imported
only when a judge call, an OpenAI-compatible model or a local model is used.
"""

from __future__ import annotations

_LAZY = {
    "evaluate": ("runner", "evaluate"),
    "load_run": ("runner", "load_run"),
    "EvalResult": ("runner", "EvalResult"),
    "Judge": ("judge", "Judge"),
    "JudgeConfig": ("judge", "JudgeConfig"),
    "JudgeItem": ("judge", "JudgeItem"),
    "Judgement": ("judge", "Judgement"),
    "parse_judgement": ("judge", "parse_judgement"),
    "load_prompt": ("judge", "load_prompt"),
    "DIMENSIONS": ("judge", "DIMENSIONS"),
    "RetryPolicy": ("client", "RetryPolicy"),
    "CallableModel": ("models", "CallableModel"),
    "OpenAIChatModel": ("models", "OpenAIChatModel"),
    "TransformersModel": ("models", "TransformersModel"),
    "ModelAdapter": ("models", "ModelAdapter"),
    "model_from_spec": ("models", "model_from_spec"),
    "TurnRequest": ("bench", "TurnRequest"),
    "load_dialogues": ("bench", "load_dialogues"),
    "build_request": ("bench", "build_request"),
    "EvalStore": ("store", "EvalStore"),
    "score_turns": ("scoring", "score_turns"),
    "compare_runs": ("scoring", "compare_runs"),
    "format_markdown": ("report", "format_markdown"),
    "format_comparison_markdown": ("report", "format_comparison_markdown"),
    "export_lmms_eval": ("exports", "export_lmms_eval"),
    "export_vlmevalkit_tsv": ("exports", "export_vlmevalkit_tsv"),
}

__all__ = sorted(_LAZY)


from .._lazy import lazy_exports  # noqa: E402

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
