"""MMCRCollator: assistant-only labels checked by decoding, image placement, padding, length policy."""

from __future__ import annotations

import pytest

from train_helpers import FAMILIES, SPAN_SHAPE

pytestmark = pytest.mark.usefixtures("train_extra")


def _collator(family, **kw):
    from mmcr_datasets.testing.tiny_models import cached_processor
    from mmcr_datasets.train.collator import MMCRCollator

    return MMCRCollator(cached_processor(family), FAMILIES[family], **kw)


def _answers(row):
    return ["".join(p["text"] for p in m["content"] if p["type"] == "text")
            for m in row["messages"] if m["role"] == "assistant"]


def _runs(labels):
    """Maximal runs of learned positions as (start, end) token indices."""
    runs, start = [], None
    for t, lab in enumerate(labels):
        if lab != -100 and start is None:
            start = t
        elif lab == -100 and start is not None:
            runs.append((start, t))
            start = None
    if start is not None:
        runs.append((start, len(labels)))
    return runs


def _image_token_id(collator):
    tok = collator.tokenizer
    return tok.convert_tokens_to_ids(collator.processor.image_token)


def _mixed_rows(rows):
    """Two single-image and two multi-image dialogues (one has images introduced in later turns)."""
    single = [r for r in rows if len(r["images"]) == 1][:2]
    multi = sorted((r for r in rows if len(r["images"]) > 1), key=lambda r: -len(r["images"]))[:2]
    return single + multi


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_labels_decode_to_exactly_the_answers(sample_rows, family):
    collator = _collator(family)
    rows = _mixed_rows(sample_rows)
    batch = collator(rows)
    tok = collator.tokenizer
    prefix, marker = SPAN_SHAPE[FAMILIES[family]]
    image_id = _image_token_id(collator)
    ids, labels, mask = batch["input_ids"], batch["labels"], batch["attention_mask"]
    assert ids.shape == labels.shape == mask.shape and ids.shape[0] == len(rows)
    for i, row in enumerate(rows):
        lab = labels[i].tolist()
        learned = [(s, e) for s, e in _runs(lab)]
        decoded = [tok.decode(ids[i, s:e].tolist()) for s, e in learned]
        # one learned run per assistant turn: the answer and its end marker, nothing else
        assert decoded == [prefix + a + marker for a in _answers(row)]
        assert all(lab[t] == ids[i, t].item() for s, e in learned for t in range(s, e))
        # padding and image tokens are never learned; padding is masked out
        assert (labels[i][mask[i] == 0] == -100).all()
        assert not ((ids[i] == image_id) & (labels[i] != -100)).any()
    assert collator.stats.rows_out == len(rows) and collator.stats.learned_tokens > 0


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_same_ids_and_labels_as_tokenize_dialogue(sample_rows, family):
    from mmcr_datasets.labels import tokenize_dialogue

    collator = _collator(family)
    rows = _mixed_rows(sample_rows)
    batch = collator(rows)
    for i, row in enumerate(rows):
        one = tokenize_dialogue(row, FAMILIES[family], collator.processor, literal_tokens="raise")
        n = len(one["input_ids"])
        assert batch["input_ids"][i, :n].tolist() == one["input_ids"]
        assert batch["labels"][i, :n].tolist() == one["labels"]
        assert int(batch["attention_mask"][i].sum()) == n


def test_alignment_fallback_agrees(sample_rows):
    import torch

    rows = _mixed_rows(sample_rows)
    fast = _collator("idefics3")(rows)
    slow = _collator("idefics3")
    slow._replacements_ok = False  # as with a processor that cannot report replacement offsets
    batch = slow(rows)
    assert torch.equal(batch["labels"], fast["labels"]) and torch.equal(batch["input_ids"], fast["input_ids"])


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_images_sit_in_the_turn_that_refers_to_them(sample_rows, family):
    """Image tokens of user turn k lie between the learned answers k-1 and k."""
    collator = _collator(family)
    row = next(r for r in sample_rows if any(p["type"] == "image" for m in r["messages"][2:] for p in m["content"]))
    batch = collator([row])
    ids, labels = batch["input_ids"][0].tolist(), batch["labels"][0].tolist()
    runs = _runs(labels)
    image_id = _image_token_id(collator)
    positions = [t for t, x in enumerate(ids) if x == image_id]
    bounds = [0] + [e for _, e in runs]
    users = [m for m in row["messages"] if m["role"] == "user"]
    for k, m in enumerate(users):
        has_image = any(p["type"] == "image" for p in m["content"])
        inside = [t for t in positions if bounds[k] <= t < runs[k][0]]
        assert bool(inside) == has_image, f"turn {k}"


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_truncation_at_a_turn_boundary_keeps_whole_images(sample_rows, family):
    from mmcr_datasets.train.tiny import tiny_model

    import torch

    rows = _mixed_rows(sample_rows)
    full = _collator(family)(rows)
    limit = 700
    collator = _collator(family, max_length=limit)
    batch = collator(rows)
    lengths = batch["attention_mask"].sum(dim=1).tolist()
    assert all(n <= limit for n in lengths)
    s = collator.stats
    assert s.truncated_rows + s.dropped_too_long == sum(1 for n in full["attention_mask"].sum(1).tolist() if n > limit)
    assert s.truncated_rows > 0 and s.turns_removed > 0
    # every kept row still decodes to a prefix of its answers
    prefix, marker = SPAN_SHAPE[FAMILIES[family]]
    kept = [r for r in rows if r["id"] not in s.dropped_ids]
    for i, row in enumerate(kept):
        decoded = [collator.tokenizer.decode(batch["input_ids"][i, a:b].tolist()) for a, b in _runs(batch["labels"][i].tolist())]
        answers = [prefix + a + marker for a in _answers(row)]
        assert 1 <= len(decoded) <= len(answers) and decoded == answers[: len(decoded)]
    # no image was cut: the model accepts the batch (it checks image tokens against image features)
    model = tiny_model(family, collator.processor)
    with torch.no_grad():
        out = model(**batch)
    assert torch.isfinite(out.loss)


def test_drop_policy_counts_and_names_rows(sample_rows):
    from mmcr_datasets.train.collator import BatchTooLongError

    rows = _mixed_rows(sample_rows)
    collator = _collator("qwen2_vl", max_length=1400, truncation="drop")
    batch = collator(rows)
    s = collator.stats
    assert s.dropped_too_long >= 1 and len(s.dropped_ids) == s.dropped_too_long
    assert batch["input_ids"].shape[0] == len(rows) - s.dropped_too_long == s.rows_out
    with pytest.raises(BatchTooLongError, match="max_length=10"):
        _collator("qwen2_vl", max_length=10, truncation="drop")(rows)


def test_max_turns_and_truncate_turns(sample_rows):
    from mmcr_datasets.train.collator import truncate_turns

    row = max(sample_rows, key=lambda r: len(r["images"]))
    short = truncate_turns(row, 1)
    used = [p["index"] for m in short["messages"] for p in m["content"] if p["type"] == "image"]
    assert used == list(range(len(short["images"]))) and len(short["messages"]) == 2
    assert short["num_turns"] == 1 and short["num_images"] == len(short["images"])
    collator = _collator("llava", max_turns=1)
    batch = collator([row])
    assert len(_runs(batch["labels"][0].tolist())) == 1 and collator.stats.capped_rows == 1


def test_collator_rejects_bad_options():
    with pytest.raises(ValueError, match="truncation"):
        _collator("llava", truncation="cut")
    with pytest.raises(ValueError, match="max_length"):
        _collator("llava", max_length=0)


def test_collator_pickles_for_spawned_workers(sample_rows):
    import pickle

    import torch

    collator = _collator("llava", max_turns=1)
    clone = pickle.loads(pickle.dumps(collator))
    rows = sample_rows[:2]
    assert torch.equal(clone(rows)["labels"], collator(rows)["labels"])


def test_labels_follow_the_tokens_under_left_padding(sample_rows):
    import torch

    rows = _mixed_rows(sample_rows)[:3]
    right = _collator("qwen2_vl")(rows)
    left_collator = _collator("qwen2_vl", processor_kwargs={"padding_side": "left"})
    left = left_collator(rows)
    assert (left["attention_mask"][:, 0] == 0).any()  # some row really is padded on the left
    for i in range(len(rows)):
        r, lm = right["attention_mask"][i].bool(), left["attention_mask"][i].bool()
        assert torch.equal(right["labels"][i][r], left["labels"][i][lm])
        assert (left["labels"][i][~lm] == -100).all()
