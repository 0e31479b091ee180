"""Image-text alignment scores with a CLIP model, and the filter that uses them.

For each image of a dialogue the text it is scored against is the question that introduces it
plus the answer to that question (CLIP truncates to its context length, 77 tokens for the
OpenAI checkpoints): that turn is where the dialogue talks about the image most directly. The
score is the cosine similarity of the projected embeddings (a number in [-1, 1], not the
logit-scaled value); it is stored per image in the record's ``clip_scores``.

A dialogue's alignment is the *minimum* of its image scores (one unrelated image is enough to
make a multi-image dialogue wrong). The filter drops a dialogue whose alignment is below an
absolute ``threshold``, or below the ``percentile``-th percentile of all alignments of the run
(applied when the output is written, once every score is known).
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Optional, Sequence

from ..errors import MMCRError, require


@dataclass(frozen=True)
class AlignmentFilter:
    threshold: Optional[float] = None
    percentile: Optional[float] = None  # 0..100

    def __post_init__(self):
        if self.threshold is not None and self.percentile is not None:
            raise ValueError("give a CLIP threshold or a percentile, not both")
        if self.percentile is not None and not 0 <= self.percentile <= 100:
            raise ValueError("the CLIP percentile must be between 0 and 100")

    @property
    def active(self) -> bool:
        return self.threshold is not None or self.percentile is not None


def alignment_of(scores: Sequence[float]) -> Optional[float]:
    return min(scores) if scores else None


def percentile_cut(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile of ``values`` with linear interpolation (numpy's default)."""
    xs = sorted(values)
    if not xs:
        return float("-inf")
    pos = (len(xs) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def texts_per_image(messages: list, num_images: int) -> list[str]:
    """For each image index, the text of the question that shows it and of the answer after it."""
    out = [""] * num_images
    for i, m in enumerate(messages):
        if m["role"] != "user":
            continue
        idx = [p["index"] for p in m["content"] if p["type"] == "image"]
        if not idx:
            continue
        q = " ".join(p["text"] for p in m["content"] if p["type"] == "text")
        a = ""
        if i + 1 < len(messages) and messages[i + 1]["role"] == "assistant":
            a = " ".join(p["text"] for p in messages[i + 1]["content"] if p["type"] == "text")
        for k in idx:
            out[k] = f"{q} {a}".strip()
    return out


class ClipScorer:
    """Load a CLIP checkpoint folder (model, tokenizer, image-processor config) and score pairs."""

    def __init__(self, model_path: str, *, device: str = "cpu"):
        self.torch = require("torch", feature="the CLIP alignment filter", extra="generate")
        transformers = require("transformers", feature="the CLIP alignment filter", extra="generate")
        if not Path(model_path).is_dir():
            raise MMCRError(f"CLIP model folder {model_path} does not exist (pass a local checkpoint folder)")
        self.model = transformers.CLIPModel.from_pretrained(model_path).eval().to(device)
        self.tokenizer = transformers.AutoTokenizer.from_pretrained(model_path)
        from transformers.models import clip

        proc_cls = getattr(clip, "CLIPImageProcessorPil", None) or clip.CLIPImageProcessor
        self.processor = proc_cls.from_pretrained(model_path)
        self.device = device
        self.max_length = int(getattr(self.model.config.text_config, "max_position_embeddings", 77))
        h = hashlib.sha256()
        for name in ("config.json", "model.safetensors", "pytorch_model.bin"):
            p = Path(model_path) / name
            if p.is_file():
                h.update(name.encode())
                h.update(str(p.stat().st_size).encode())
                with open(p, "rb") as fh:
                    h.update(fh.read(1 << 20))
        self.fingerprint = f"clip:{Path(model_path).name}:{h.hexdigest()[:12]}"

    def _features(self, out):
        # transformers 5 returns a model output whose pooler_output is the projected embedding
        return out if isinstance(out, self.torch.Tensor) else out.pooler_output

    def score(self, images: Sequence[bytes], texts: Sequence[str]) -> list[float]:
        """Cosine similarity of each image with the text at the same position."""
        from PIL import Image

        torch = self.torch
        pil = []
        for data in images:
            with Image.open(io.BytesIO(data)) as img:
                pil.append(img.convert("RGB"))
        with torch.inference_mode():
            pix = self.processor(images=pil, return_tensors="pt")["pixel_values"].to(self.device)
            tok = self.tokenizer([t or " " for t in texts], padding=True, truncation=True,
                                 max_length=self.max_length, return_tensors="pt").to(self.device)
            img_f = self._features(self.model.get_image_features(pixel_values=pix))
            txt_f = self._features(self.model.get_text_features(input_ids=tok["input_ids"],
                                                                attention_mask=tok["attention_mask"]))
            img_f = torch.nn.functional.normalize(img_f, dim=-1)
            txt_f = torch.nn.functional.normalize(txt_f, dim=-1)
            sims = (img_f * txt_f).sum(-1)
        return [round(float(s), 6) for s in sims]


@lru_cache(maxsize=2)
def load_clip_scorer(model_path: str) -> ClipScorer:
    """A process-wide cached :class:`ClipScorer`."""
    return ClipScorer(model_path)
