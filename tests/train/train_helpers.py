"""Constants shared by the [train] tests (a uniquely named module: every test folder has a conftest)."""

from __future__ import annotations

#: tiny family -> formatter, for the three families the issue names
FAMILIES = {"qwen2_vl": "qwen2_vl", "llava": "llava_v1", "idefics3": "idefics3"}
#: what precedes and ends each learned span
SPAN_SHAPE = {"qwen2_vl": ("", "<|im_end|>"), "llava_v1": (" ", "</s>"), "idefics3": (" ", "<end_of_utterance>")}
