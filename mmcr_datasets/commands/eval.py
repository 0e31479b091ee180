"""``mmcr eval``: evaluate a model on MMCR-Bench with an LLM judge; resumable (run it again to finish).

``mmcr eval-export``: write MMCR-Bench for another harness (an lmms-eval task folder, or the
VLMEvalKit multi-turn TSV).
"""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser(
        "eval", help="evaluate a model on MMCR-Bench with an LLM judge (needs the [eval] extra)",
        description="Replay every MMCR-Bench dialogue turn by turn, judge each answer with an OpenAI-compatible "
                    "judge, and write turns.jsonl, scores.json, report.md and plots into --out. Interrupted runs "
                    "resume from OUT/cache.sqlite when started again with the same arguments. API keys are read "
                    "from the environment only (MMCR_JUDGE_API_KEY or OPENAI_API_KEY for the judge, "
                    "MMCR_MODEL_API_KEY or OPENAI_API_KEY for the model) and never written anywhere.")
    p.add_argument("--data", required=True, metavar="PATH_OR_ID",
                   help="Hub-layout folder, parquet file, raw bench file/folder, or a Hub dataset id")
    p.add_argument("--image-root", metavar="DIR", help="image folder for raw input formats")
    p.add_argument("--model", required=True, metavar="SPEC",
                   help="openai:NAME (OpenAI-compatible endpoint), hf:PATH (local transformers model) "
                        "or callable:MODULE:FUNCTION")
    p.add_argument("--model-base-url", metavar="URL", help="endpoint of an openai: model (or MMCR_MODEL_BASE_URL)")
    p.add_argument("--max-new-tokens", type=int, default=512, help="answer length limit of the evaluated model")
    p.add_argument("--chat-format", metavar="FAMILY",
                   help="render hf: prompts with this project formatter (e.g. qwen2_vl) instead of the "
                        "processor's chat template")
    p.add_argument("--batch-size", type=int, default=4, help="prompts per generate() call of an hf: model")
    p.add_argument("--judge-model", required=True, metavar="NAME")
    p.add_argument("--judge-base-url", metavar="URL", help="judge endpoint (or MMCR_JUDGE_BASE_URL / OPENAI_BASE_URL)")
    p.add_argument("--judge-prompt", default="judge-v1", metavar="VERSION_OR_FILE")
    p.add_argument("--judge-images", action="store_true", help="send the images to the judge as well")
    p.add_argument("--history", choices=["reference", "model"], default="reference",
                   help="earlier turns shown to the model: the reference answers (default) or its own")
    p.add_argument("--concurrency", type=int, default=8, help="judge (and openai: model) calls in flight")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds per call attempt")
    p.add_argument("--max-retries", type=int, default=6)
    p.add_argument("--backoff", type=float, default=0.5, help="base of the exponential backoff, seconds")
    p.add_argument("--price-in", type=float, metavar="USD", help="judge price per million input tokens")
    p.add_argument("--price-out", type=float, metavar="USD", help="judge price per million output tokens")
    p.add_argument("--limit", type=int, help="evaluate only the first N dialogues")
    p.add_argument("--cache", metavar="FILE", help="SQLite cache to share between runs (default OUT/cache.sqlite)")
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for the intervals")
    p.add_argument("--no-plots", action="store_true")
    p.add_argument("--taxonomy", metavar="FILE", help="taxonomy JSON to use instead of the packaged one")
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument("--format", dest="report_format", choices=["text", "json"], default="text")
    p.set_defaults(func=run)

    e = sub.add_parser("eval-export", help="write MMCR-Bench as an lmms-eval task folder or a VLMEvalKit TSV")
    e.add_argument("--data", required=True, metavar="PATH_OR_ID", help="as for `mmcr eval`")
    e.add_argument("--image-root", metavar="DIR", help="image folder for raw input formats")
    e.add_argument("--to", required=True, choices=["lmms-eval", "vlmevalkit"], dest="target")
    e.add_argument("--out", required=True, metavar="PATH",
                   help="task folder (lmms-eval) or .tsv file (vlmevalkit)")
    e.add_argument("--task", default="mmcr_bench", help="lmms-eval task name")
    e.add_argument("--judge-model", default="gpt-4o", help="default judge model written into the lmms-eval hooks")
    e.add_argument("--taxonomy", metavar="FILE", help="taxonomy JSON to use instead of the packaged one")
    e.set_defaults(func=run_export)


def run_export(args) -> int:
    from ..eval.exports import export_lmms_eval, export_vlmevalkit_tsv

    if args.target == "lmms-eval":
        path = export_lmms_eval(args.data, args.out, task=args.task, judge_model=args.judge_model,
                                taxonomy=args.taxonomy, image_root=args.image_root)
        print(f"wrote {path}; run: lmms_eval --tasks {args.task} --include_path {args.out} --model ...")
    else:
        path = export_vlmevalkit_tsv(args.data, args.out, taxonomy=args.taxonomy, image_root=args.image_root)
        print(f"wrote {path}")
    return 0


def run(args) -> int:
    import json

    from ..errors import require

    require("openai", feature="mmcr eval", extra="eval")
    from ..eval.client import RetryPolicy
    from ..eval.judge import JudgeConfig
    from ..eval.models import model_from_spec
    from ..eval.runner import evaluate

    retry = RetryPolicy(max_retries=args.max_retries, timeout=args.timeout, backoff_base=args.backoff)
    model = model_from_spec(args.model, base_url=args.model_base_url, concurrency=args.concurrency,
                            max_tokens=args.max_new_tokens, batch_size=args.batch_size, retry=retry,
                            formatter=args.chat_format)
    judge = JudgeConfig(model=args.judge_model, base_url=args.judge_base_url, send_images=args.judge_images,
                        concurrency=args.concurrency, retry=retry, prompt=args.judge_prompt,
                        price_input_per_mtok=args.price_in, price_output_per_mtok=args.price_out)
    result = evaluate(args.data, model, judge, out=args.out, history=args.history, taxonomy=args.taxonomy,
                      limit=args.limit, image_root=args.image_root, cache=args.cache, n_boot=args.bootstrap,
                      plots=not args.no_plots)
    total = result.scores["total"]
    if args.report_format == "json":
        print(json.dumps({"out": str(result.out), "contextual_accuracy": total["all"],
                          "contextual_accuracy_parsed": total["parsed"], "n_turns": total["n_turns"],
                          "n_parsed": total["n_parsed"], "status_counts": result.scores["status_counts"]}))
    else:
        a = total["all"]
        ci = f" [{a['ci_low']:.1f}, {a['ci_high']:.1f}]" if a.get("ci_low") is not None else ""
        print(f"contextual accuracy: {a['value']:.1f}{ci} over {total['n_turns']} turn(s) "
              f"({total['n_parsed']} parsed); report: {result.out / 'report.md'}")
    failed = result.scores["status_counts"].get("failed", 0) + result.scores["status_counts"].get("no_answer", 0)
    if failed:
        print(f"{failed} turn(s) have no judgement because a call failed; run the same command again to retry them")
        return 1
    return 0
