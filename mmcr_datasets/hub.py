"""Loading from the Hub, a Hub-layout folder or a raw release folder; uploading a folder."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

from .errors import MMCRError

logger = logging.getLogger(__name__)

NAMES = {"mmcr/310k": "310k", "mmcr/bench": "bench", "310k": "310k", "bench": "bench"}


def _short(name: str) -> str:
    key = name.lower().rstrip("/")
    for full, short in NAMES.items():
        if key == full or key.endswith("/" + full):
            return short
    return "bench" if "bench" in key else "310k"


def load(name: str = "mmcr/310k", config: Optional[str] = None, split: Optional[str] = None,
         data_dir=None, streaming: bool = False, *, format: Optional[str] = None, image_root=None,
         taxonomy=None, on_invalid: str = "raise", cache_dir=None, num_proc: Optional[int] = None, **kwargs):
    """Load MMCR-310k or MMCR-Bench.

    * ``data_dir`` is a Hub-layout folder (parquet + README): read with ``datasets.load_dataset``.
    * ``data_dir`` is a raw release folder or file (Ovis/LLaVA, MMDU, ShareGPT or canonical JSON):
      prepared through the builder (:class:`~mmcr_datasets.builders.MMCR310k` / ``MMCRBench``).
    * no ``data_dir``: ``datasets.load_dataset(name)`` (a local ``./mmcr/310k`` folder first, then the Hub).
    """
    import datasets

    short = _short(name)
    if data_dir is not None:
        data_dir = Path(data_dir)
        from .validation import is_hub_folder

        if is_hub_folder(data_dir):
            return datasets.load_dataset(str(data_dir), config, split=split, streaming=streaming,
                                         cache_dir=cache_dir, **kwargs)
        if not data_dir.exists():
            raise MMCRError(f"data_dir {data_dir} does not exist")
        from .builders import builder_for

        builder = builder_for(short, config=config, data_dir=data_dir, format=format, image_root=image_root,
                              taxonomy=taxonomy, on_invalid=on_invalid, cache_dir=cache_dir)
        if streaming:
            return builder.as_streaming_dataset(split=split)
        builder.download_and_prepare(num_proc=num_proc)
        return builder.as_dataset(split=split)
    repo = name if "/" in name else f"mmcr/{name}"
    return datasets.load_dataset(repo, config, split=split, streaming=streaming, cache_dir=cache_dir, **kwargs)


def push_to_hub(folder, repo_id: str, *, token: Optional[str] = None, private: bool = False,
                revision: Optional[str] = None, commit_message: Optional[str] = None,
                validate: bool = True, endpoint: Optional[str] = None) -> str:
    """Upload a Hub-layout folder written by :func:`~mmcr_datasets.export.build_hub_folder`.

    The folder is validated first (``validate=False`` skips that); an invalid folder is refused.
    Returns the URL of the commit.
    """
    from huggingface_hub import HfApi

    folder = Path(folder)
    if validate:
        from .validation import validate_hub_folder

        report = validate_hub_folder(folder)
        if not report.ok:
            raise MMCRError(f"refusing to upload {folder}: {report.num_errors} validation error(s); "
                            f"run `mmcr validate {folder}` to see them")
    api = HfApi(token=token, endpoint=endpoint)
    api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    info = api.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type="dataset", revision=revision,
                             commit_message=commit_message or f"Upload {repo_id} with mmcr-datasets",
                             allow_patterns=["README.md", "*/*.parquet", "plots/*.png"])
    return str(getattr(info, "commit_url", info))


def iter_rows(path, *, batch_rows: int = 256):
    """Rows of a Hub-layout folder or parquet file, images undecoded ({"bytes", "path"}), in shard order."""
    import pyarrow.parquet as pq

    path = Path(path)
    shards = [path] if path.is_file() else sorted(path.glob("*/*.parquet"))
    if not shards:
        raise MMCRError(f"no parquet shards under {path}")
    for shard in shards:
        pf = pq.ParquetFile(shard)
        for batch in pf.iter_batches(batch_size=batch_rows):
            yield from batch.to_pylist()


def folder_name(path) -> str:
    """'bench' or '310k' for a Hub folder, from the parquet metadata (or the folder layout)."""
    import pyarrow.parquet as pq

    from .features import read_mmcr_metadata

    path = Path(path)
    shards = [path] if path.is_file() else sorted(path.glob("*/*.parquet"))
    if shards:
        meta = read_mmcr_metadata(pq.read_schema(shards[0])) or {}
        if meta.get("dataset") in ("mmcr/310k", "mmcr/bench"):
            return meta["dataset"].split("/")[1]
        if shards[0].parent.name == "data":
            return "bench"
    return "310k"
