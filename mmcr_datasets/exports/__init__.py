"""Exports to peer formats that are not raw training formats of their own: OpenAI chat messages
(JSONL) and the VLMEvalKit multi-turn TSV. (Ovis/LLaVA JSON, MMDU JSON and ShareGPT JSONL are
written by :mod:`mmcr_datasets.writers`.)

``EXPORTERS`` maps a ``--to`` name to ``(writer, reader, suffix)`` so the CLI can offer them:
``writer(rows, path, image_root=...) -> count`` and ``reader(path) -> iterator of rows``.
"""

from __future__ import annotations

from .openai import from_openai_messages, read_openai_jsonl, to_openai_messages, write_openai_jsonl
from .vlmevalkit import read_vlmevalkit_tsv, to_vlmevalkit_record, write_vlmevalkit_tsv

__all__ = [
    "EXPORTERS", "to_openai_messages", "from_openai_messages", "write_openai_jsonl", "read_openai_jsonl",
    "to_vlmevalkit_record", "write_vlmevalkit_tsv", "read_vlmevalkit_tsv",
]

EXPORTERS = {
    "openai": (write_openai_jsonl, read_openai_jsonl, ".jsonl"),
    "vlmevalkit": (write_vlmevalkit_tsv, read_vlmevalkit_tsv, ".tsv"),
}
