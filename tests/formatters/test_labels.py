"""Assistant-only labels with real transformers processors of tiny offline models."""

from __future__ import annotations

import pytest

pytest.importorskip("transformers")
pytest.importorskip("tokenizers")

from fmt_helpers import assistant, image, user  # noqa: E402
from mmcr_datasets.formatters import LiteralSpecialTokenError  # noqa: E402
from mmcr_datasets.labels import IGNORE_INDEX, label_tokens, tokenize_dialogue  # noqa: E402
from mmcr_datasets.testing.tiny_models import cached_processor  # noqa: E402

#: tiny processor family -> formatter of the same model family
FAMILIES = {"qwen2_vl": "qwen2_vl", "qwen2_5_vl": "qwen2_vl", "llava": "llava_v1", "idefics3": "idefics3",
            "smolvlm": "smolvlm"}
SPAN_SHAPE = {"qwen2_vl": ("", "<|im_end|>"), "llava_v1": (" ", "</s>"), "idefics3": (" ", "<end_of_utterance>"),
              "smolvlm": (" ", "<end_of_utterance>")}


def _runs(ids, labels):
    runs, cur = [], []
    for i, lab in zip(ids, labels):
        if lab != IGNORE_INDEX:
            assert lab == i
            cur.append(i)
        elif cur:
            runs.append(cur)
            cur = []
    if cur:
        runs.append(cur)
    return runs


def _answers(row):
    return ["".join(p["text"] for p in m["content"]) for m in row["messages"] if m["role"] == "assistant"]


def _check(row, fmt, processor, out):
    ids, labels = out["input_ids"], out["labels"]
    assert len(ids) == len(labels) == len(out["attention_mask"])
    decoded = [processor.tokenizer.decode(r) for r in _runs(ids, labels)]
    prefix, marker = SPAN_SHAPE[fmt]
    # decoding the learned tokens gives exactly each answer with its end marker (and nothing else)
    assert decoded == [prefix + a + marker for a in _answers(row)]
    # no image token is ever learned
    image_id = processor.tokenizer.convert_tokens_to_ids(processor.image_token)
    assert all(lab != image_id for lab in labels)


@pytest.mark.parametrize("method", ["replacements", "align"])
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_labels_decode_to_answers(rows, edges, family, method):
    processor = cached_processor(family)
    fmt = FAMILIES[family]
    cases = rows[::3] + [edges["several_images_one_turn"], edges["images_only_in_later_turns"], edges["unicode"]]
    for row in cases:
        out = tokenize_dialogue(row, fmt, processor, method=method, return_formatted=True)
        _check(row, fmt, processor, out)
        # image placeholders were expanded: many image tokens per image, pixel inputs present
        image_id = processor.tokenizer.convert_tokens_to_ids(processor.image_token)
        assert out["input_ids"].count(image_id) >= 2 * len(row["images"])
        assert "pixel_values" in out


@pytest.mark.parametrize("family", ["qwen2_vl", "llava", "idefics3"])
def test_ids_equal_a_direct_processor_call(rows, family):
    from mmcr_datasets.labels import load_image

    processor = cached_processor(family)
    row = rows[12]
    out = tokenize_dialogue(row, FAMILIES[family], processor, return_formatted=True)
    direct = processor(text=[out["formatted"].text], images=[load_image(i) for i in out["formatted"].images],
                       add_special_tokens=False)
    assert out["input_ids"] == list(direct["input_ids"][0])


def test_methods_agree(rows):
    processor = cached_processor("idefics3")
    for row in rows[10:16]:
        a = tokenize_dialogue(row, "idefics3", processor, method="replacements")
        b = tokenize_dialogue(row, "idefics3", processor, method="align")
        assert a["input_ids"] == b["input_ids"] and a["labels"] == b["labels"]


# (SmolVLM's apply_chat_template reads its video processor, which needs torchvision: not here.)
@pytest.mark.parametrize("family", ["qwen2_vl", "idefics3"])
def test_matches_processor_chat_template(rows, family):
    """With the family's real chat template given to the processor, transformers'
    apply_chat_template produces the same text and ids as tokenize_dialogue."""
    from mmcr_datasets.testing.reference_templates import reference_dir, reference_source

    if reference_dir() is None:
        pytest.skip("reference chat templates are not available")
    from mmcr_datasets.labels import load_image

    processor = cached_processor(family)
    fmt = FAMILIES[family]
    row = rows[11]
    out = tokenize_dialogue(row, fmt, processor, return_formatted=True)
    text = processor.apply_chat_template(row["messages"], chat_template=reference_source(fmt), tokenize=False)
    assert text == out["formatted"].text
    enc = processor(text=[text], images=[load_image(i) for i in out["formatted"].images], add_special_tokens=False)
    assert list(enc["input_ids"][0]) == out["input_ids"]


def test_tokenizer_only_and_text_only(rows):
    processor = cached_processor("qwen2_vl")
    row = rows[0]
    out = tokenize_dialogue(row, "qwen2_vl", processor.tokenizer)  # no expansion: one <|image_pad|>
    _check(row, "qwen2_vl", processor, out)
    assert "pixel_values" not in out
    text_only = {"id": "t", "images": [], "messages": [user("Hello there"), assistant("General Kenobi."),
                                                       user("Again?"), assistant("Yes.")]}
    out = tokenize_dialogue(text_only, "qwen2_vl", processor, add_generation_prompt=False)
    _check(text_only, "qwen2_vl", processor, out)


def test_return_tensors_pt(rows):
    torch = pytest.importorskip("torch")
    processor = cached_processor("llava")
    out = tokenize_dialogue(rows[12], "llava_v1", processor, return_tensors="pt")
    assert isinstance(out["input_ids"], torch.Tensor) and out["input_ids"].shape == out["labels"].shape
    assert out["input_ids"].shape[0] == 1 and isinstance(out["pixel_values"], torch.Tensor)
    assert (out["labels"] != IGNORE_INDEX).sum() > 0


def test_literal_placeholder_in_text_is_refused(edges):
    processor = cached_processor("llava")
    row = {"id": "lit", "images": edges["system_prompt"]["images"],
           "messages": [user(image(0), "Type <image> to attach a picture?"), assistant("No.")]}
    with pytest.raises(LiteralSpecialTokenError):
        tokenize_dialogue(row, "llava_v1", processor)
    out = tokenize_dialogue(row, "llava_v1", processor, literal_tokens="escape")
    _check({"messages": [m for m in row["messages"]]}, "llava_v1", processor, out)


def test_label_tokens_boundaries():
    ids = [10, 11, 12, 13, 14]
    offsets = [(0, 3), (3, 5), (5, 9), (9, 9), (9, 12)]
    # span covering chars 4..9: tokens 1 (overlaps) and 2; the empty token at 9 is outside
    assert label_tokens(ids, offsets, [(4, 9)]) == [-100, 11, 12, -100, -100]
    assert label_tokens(ids, offsets, [(0, 3), (9, 12)]) == [10, -100, -100, 13, 14]


@pytest.mark.parametrize("family", ["qwen2_vl", "llava", "idefics3"])
def test_tiny_model_loss_uses_only_assistant_tokens(rows, family):
    """A real forward pass of a tiny random model: the loss is the cross-entropy over exactly the
    labelled (assistant) positions, and the image tokens match the model's image features."""
    torch = pytest.importorskip("torch")
    from mmcr_datasets.testing.tiny_models import tiny_model

    processor = cached_processor(family)
    model = tiny_model(family, tokenizer=processor.tokenizer)
    batch = tokenize_dialogue(rows[12], FAMILIES[family], processor, return_tensors="pt")
    with torch.no_grad():
        out = model(**batch)
    labels = batch["labels"][0, 1:]
    logits = out.logits[0, :-1]
    keep = labels != IGNORE_INDEX
    manual = torch.nn.functional.cross_entropy(logits[keep], labels[keep])
    assert torch.isfinite(out.loss) and torch.allclose(out.loss, manual, atol=1e-5)
    assert 0 < int(keep.sum()) < len(labels)


def test_dataset_map(rows):
    """Inside datasets' Dataset.map, with images decoded by the Image feature."""
    datasets = pytest.importorskip("datasets")
    from pathlib import Path

    data = [{"id": r["id"], "messages": r["messages"],
             "images": [{"bytes": Path(i["path"]).read_bytes(), "path": None} for i in r["images"]]}
            for r in rows[9:13]]
    ds = datasets.Dataset.from_list(data).cast_column("images", datasets.List(datasets.Image()))
    processor = cached_processor("qwen2_vl")
    out = ds.map(lambda r: tokenize_dialogue(r, "qwen2_vl", processor), remove_columns=ds.column_names)
    assert {"input_ids", "labels", "pixel_values", "image_grid_thw"} <= set(out.column_names)
    for row, enc in zip(data, out):
        decoded = [processor.tokenizer.decode(r) for r in _runs(enc["input_ids"], enc["labels"])]
        assert decoded == [a + "<|im_end|>" for a in _answers(row)]
