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

Quick start (``pip install 'mmcr-datasets[generate]'``; torch + transformers for the embedding
domain assignment and the CLIP filter)::

    mmcr generate --docs docs.jsonl --out gen --n 1000 --llm-model gpt-4o --concurrency 32 \
        --clip-model ./clip-vit-base-patch32 --clip-percentile 10 --price-in 2.5 --price-out 10
    mmcr build gen/data --format messages --out mmcr/310k

``docs.jsonl`` holds one interleaved document per line, e.g.
``{"id": "d1", "texts": ["Intro ...", null, "Caption ..."], "images": [null, "img/a.jpg", null]}``.
Interrupt it at any time (Ctrl-C finishes the requests in flight) and run the same command again
to continue. ``OUT/quarantine.jsonl`` says why each task did not become a dialogue;
``OUT/provenance.jsonl`` holds each dialogue's domain score, repairs and tokens.

A dry run without an LLM: serve :func:`.fake_llm.fake_reply` with
``mmcr_datasets.testing.openai_server.OpenAIServer(reply=fake_reply)`` and point
``--llm-base-url`` at it.

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


from .._lazy import lazy_exports  # noqa: E402

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
