"""The ``[generate]`` extra: build MMCR-style dialogues from image-text interleaved documents.

The paper built MMCR-310k by turning OmniCorpus documents into topic-focused multi-turn
dialogues with GPT-4o and filtering them by CLIP image-text similarity; its prompts and
thresholds are unpublished. This package is the project's own version of that pipeline:

1. read interleaved documents (:mod:`.documents`), de-duplicate documents and images;
2. pick image groups with their surrounding text (:mod:`.selection`);
3. assign a taxonomy domain and sub-topic with a score (:mod:`.domains`);
4. ask an OpenAI-compatible LLM for a JSON dialogue with the versioned prompts in
   ``prompts/`` (:mod:`.prompting`, :mod:`.llm`), parse it with safe repairs only
   (:mod:`.parsing`) and validate it with the core checks;
5. score image-text alignment with CLIP and filter (:mod:`.alignment`);
6. write sharded canonical JSONL plus a quarantine file (:mod:`.pipeline`), with a persistent
   cache that makes runs resumable (:mod:`.store`).

Nothing here is imported by ``import mmcr_datasets``; openai, torch and transformers are imported
only when the functions that need them run.
"""

from __future__ import annotations

_LAZY = {
    "GenerateConfig": ("pipeline", "GenerateConfig"),
    "GenerateResult": ("pipeline", "GenerateResult"),
    "run_generation": ("pipeline", "run_generation"),
    "LLMSettings": ("llm", "LLMSettings"),
    "SelectionOptions": ("selection", "SelectionOptions"),
    "ImageFilter": ("selection", "ImageFilter"),
    "AlignmentFilter": ("alignment", "AlignmentFilter"),
    "ImageEncoding": ("prompting", "ImageEncoding"),
    "read_documents": ("documents", "read_documents"),
    "select_tasks": ("selection", "select_tasks"),
    "parse_dialogue": ("parsing", "parse_dialogue"),
}

__all__ = sorted(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(f".{module}", __name__), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'mmcr_datasets.generate' has no attribute {name!r}")
