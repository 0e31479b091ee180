"""The domain / sub-topic taxonomy (8 domains x 5 sub-topics by default).

The default file is ``schema/taxonomy.json``. Every loader and builder takes ``taxonomy=``: a
:class:`Taxonomy`, a path to a user file with the same schema, or ``None`` for the default.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Union

from .errors import TaxonomyError
from .resources import schema_path

DEFAULT_TAXONOMY_FILE = "taxonomy.json"


@dataclass(frozen=True)
class Subtopic:
    name: str
    domain: str
    description: str = ""
    provisional: bool = True


@dataclass(frozen=True)
class Domain:
    name: str
    description: str = ""
    provisional: bool = False
    subtopics: tuple[Subtopic, ...] = ()


@dataclass(frozen=True)
class Taxonomy:
    """An ordered list of domains, each with its sub-topics. Order fixes the ClassLabel ids."""

    name: str
    version: str
    domains: tuple[Domain, ...]
    path: str | None = None
    _domain_index: dict = field(default_factory=dict, repr=False, compare=False)
    _subtopic_index: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self):
        self._domain_index.update({d.name: i for i, d in enumerate(self.domains)})
        self._subtopic_index.update({s.name: i for i, s in enumerate(self.subtopics)})

    @property
    def domain_names(self) -> list[str]:
        return [d.name for d in self.domains]

    @property
    def subtopics(self) -> list[Subtopic]:
        return [s for d in self.domains for s in d.subtopics]

    @property
    def subtopic_names(self) -> list[str]:
        return [s.name for s in self.subtopics]

    def domain_id(self, name: str) -> int:
        return self._domain_index[name]

    def subtopic_id(self, name: str) -> int:
        return self._subtopic_index[name]

    def has_domain(self, name: str) -> bool:
        return name in self._domain_index

    def has_subtopic(self, name: str) -> bool:
        return name in self._subtopic_index

    def domain_of(self, subtopic: str) -> str:
        return self.subtopics[self._subtopic_index[subtopic]].domain

    def subtopic_domain_ids(self) -> list[int]:
        """For each sub-topic id, the id of its domain (used by columnar validation)."""
        return [self._domain_index[s.domain] for s in self.subtopics]

    @property
    def fingerprint(self) -> str:
        """A short hash of the label lists: equal fingerprints mean equal ClassLabel encodings."""
        payload = json.dumps([[d.name, [s.name for s in d.subtopics]] for d in self.domains])
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "version": self.version,
            "domains": [
                {
                    "name": d.name,
                    "provisional": d.provisional,
                    "description": d.description,
                    "subtopics": [
                        {"name": s.name, "provisional": s.provisional, "description": s.description}
                        for s in d.subtopics
                    ],
                }
                for d in self.domains
            ],
        }

    @classmethod
    def from_dict(cls, data: dict, *, path: str | None = None) -> "Taxonomy":
        where = path or "<taxonomy>"
        _validate_taxonomy_dict(data, where)
        domains = []
        for d in data["domains"]:
            subs = tuple(
                Subtopic(s["name"], d["name"], s.get("description", ""), bool(s.get("provisional", True)))
                for s in d["subtopics"]
            )
            domains.append(Domain(d["name"], d.get("description", ""), bool(d.get("provisional", False)), subs))
        return cls(data.get("name", "custom"), str(data.get("version", "1")), tuple(domains), path)

    @classmethod
    def from_file(cls, path: Union[str, Path]) -> "Taxonomy":
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise TaxonomyError(f"taxonomy file {path} does not exist") from None
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise TaxonomyError(f"taxonomy file {path} is not valid UTF-8 JSON: {exc}") from None
        return cls.from_dict(data, path=str(path))


def _validate_taxonomy_dict(data: dict, where: str) -> None:
    import jsonschema

    schema = json.loads(schema_path("taxonomy.schema.json").read_text(encoding="utf-8"))
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(data), key=lambda e: list(e.path))
    if errors:
        detail = "; ".join(f"/{'/'.join(map(str, e.path))}: {e.message}" for e in errors[:5])
        raise TaxonomyError(f"taxonomy {where} does not match schema/taxonomy.schema.json: {detail}")
    names = [s["name"] for d in data["domains"] for s in d["subtopics"]]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise TaxonomyError(f"taxonomy {where}: sub-topic names must be unique across domains; repeated: {dupes}")
    domains = [d["name"] for d in data["domains"]]
    if len(set(domains)) != len(domains):
        raise TaxonomyError(f"taxonomy {where}: domain names must be unique")


@lru_cache(maxsize=1)
def default_taxonomy() -> Taxonomy:
    return Taxonomy.from_file(schema_path(DEFAULT_TAXONOMY_FILE))


TaxonomyLike = Union[Taxonomy, str, Path, None]


def load_taxonomy(taxonomy: TaxonomyLike = None) -> Taxonomy:
    """Accept a :class:`Taxonomy`, a path to a taxonomy JSON file, or ``None`` (the default)."""
    if taxonomy is None:
        return default_taxonomy()
    if isinstance(taxonomy, Taxonomy):
        return taxonomy
    return Taxonomy.from_file(taxonomy)

