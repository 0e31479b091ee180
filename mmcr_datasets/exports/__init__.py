"""Exports to peer formats that are not raw training formats of their own: OpenAI chat messages
(JSONL) and the VLMEvalKit multi-turn TSV. (Ovis/LLaVA JSON, MMDU JSON and ShareGPT JSONL are
written by :mod:`mmcr_datasets.writers`.)

``EXPORTERS`` maps a ``mmcr convert --to`` name to a writer
``writer(rows, path, *, taxonomy=None, image_root=None) -> count`` (integer ClassLabel values are
turned into names with the taxonomy); ``READERS`` maps the same names to ``reader(path) -> rows``.
"""

from __future__ import annotations

from collections.abc import Mapping

from .openai import from_openai_messages, read_openai_jsonl, to_openai_messages, write_openai_jsonl
from .vlmevalkit import read_vlmevalkit_tsv, to_vlmevalkit_record, write_vlmevalkit_tsv

__all__ = [
    "EXPORTERS", "READERS", "export_openai", "export_vlmevalkit",
    "to_openai_messages", "from_openai_messages", "write_openai_jsonl", "read_openai_jsonl",
    "to_vlmevalkit_record", "write_vlmevalkit_tsv", "read_vlmevalkit_tsv",
]



def _named_labels(rows, taxonomy):
    """Rows with ``dialogue_type``/``domain``/``subtopic`` as names instead of ClassLabel ids."""
    from ..records import DIALOGUE_TYPES

    for row in rows:
        if not isinstance(row, Mapping):
            yield row
            continue
        row = dict(row)
        if isinstance(row.get("dialogue_type"), int):
            row["dialogue_type"] = DIALOGUE_TYPES[row["dialogue_type"]]
        for key, names in (("domain", "domain_names"), ("subtopic", "subtopic_names")):
            value = row.get(key)
            if isinstance(value, int):
                row[key] = None if value < 0 or taxonomy is None else getattr(taxonomy, names)[value]
        yield row


def export_openai(rows, path, *, taxonomy=None, image_root=None) -> int:
    """``mmcr convert --to openai``: fine-tuning JSONL, one ``{"messages": [...]}`` per line."""
    return write_openai_jsonl(_named_labels(rows, taxonomy), path, image_root=image_root)


def export_vlmevalkit(rows, path, *, taxonomy=None, image_root=None) -> int:
    """``mmcr convert --to vlmevalkit``: the VLMEvalKit multi-turn TSV."""
    return write_vlmevalkit_tsv(_named_labels(rows, taxonomy), path, image_root=image_root)


EXPORTERS = {"openai": export_openai, "vlmevalkit": export_vlmevalkit}
READERS = {"openai": read_openai_jsonl, "vlmevalkit": read_vlmevalkit_tsv}
