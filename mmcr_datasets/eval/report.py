"""Reports of a run (``scores.json``, ``report.md``, ``plots/*.png``) and of a comparison."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Optional

from .judge import DIMENSION_TITLES, SCORE_KEYS

logger = logging.getLogger(__name__)


def _fmt(stat: Optional[dict]) -> str:
    if not stat or stat.get("value") is None:
        return "–"
    text = f"{stat['value']:.1f}"
    if stat.get("ci_low") is not None:
        text += f" [{stat['ci_low']:.1f}, {stat['ci_high']:.1f}]"
    return text


def _delta(stat: dict) -> str:
    if stat.get("delta") is None:
        return "–"
    text = f"{stat['delta']:+.1f}"
    if stat.get("ci_low") is not None:
        text += f" [{stat['ci_low']:+.1f}, {stat['ci_high']:+.1f}]"
    return text


def format_markdown(run: dict, scores: dict) -> str:
    """A markdown report of one run."""
    level = int(round(100 * scores["bootstrap"]["level"]))
    total = scores["total"]
    acc = run.get("accounting") or {}
    lines = [
        "# MMCR-Bench evaluation",
        "",
        f"- model: `{run['model']['name']}`",
        f"- history: `{run['history']}` ({'reference answers' if run['history'] == 'reference' else 'its own answers'} "
        "as earlier turns)",
        f"- judge: `{run['judge']['model']}`, prompt `{run['judge']['prompt_version']}` "
        f"(sha {run['judge']['prompt_sha']}), temperature {run['judge']['temperature']}",
        f"- data: {run['num_dialogues']} dialogue(s), {run['num_turns']} turn(s); "
        f"{total['n_parsed']} judged and parsed",
        f"- judge calls: {acc.get('calls', 0)} new, {acc.get('cached', 0)} from cache; tokens "
        f"{acc.get('prompt_tokens', 0)} in / {acc.get('completion_tokens', 0)} out"
        + (f"; cost ${acc['cost_usd']:.4f}" if acc.get("cost_usd") is not None else ""),
        "",
        f"Contextual accuracy = 10 × mean overall judge score (0–100). Intervals: {level}% bootstrap over "
        f"dialogues ({scores['bootstrap']['n_boot']} resamples).",
        "",
        "| | contextual accuracy |",
        "|---|---|",
        f"| all turns (unparsed = 0) | **{_fmt(total['all'])}** |",
        f"| parsed turns only | {_fmt(total['parsed'])} |",
        "",
        "## Dimensions (parsed turns, × 10)",
        "",
        "| dimension | score |",
        "|---|---|",
    ]
    lines += [f"| {DIMENSION_TITLES[k]} | {_fmt(scores['dimensions'][k])} |" for k in SCORE_KEYS]
    for name, title in (("by_domain", "Domain"), ("by_subtopic", "Sub-topic"),
                        ("by_dialogue_type", "Dialogue type"), ("by_turn", "Turn index")):
        lines += ["", f"## By {title.lower()}", "", f"| {title.lower()} | turns | parsed | all turns | parsed turns |",
                  "|---|---|---|---|---|"]
        for group, stat in scores[name].items():
            lines.append(f"| {group} | {stat['n_turns']} | {stat['n_parsed']} | {_fmt(stat['all'])} | "
                         f"{_fmt(stat['parsed'])} |")
    if scores.get("status_counts"):
        lines += ["", "## Judgement status", ""]
        lines += [f"- {k}: {v}" for k, v in sorted(scores["status_counts"].items())]
        if scores.get("unparsed_reasons"):
            lines += ["", "Reasons for turns without a usable judgement:", ""]
            lines += [f"- `{k}`: {v}" for k, v in sorted(scores["unparsed_reasons"].items())]
    return "\n".join(lines) + "\n"


def write_plots(out: Path, scores: dict) -> list[Path]:
    """Bar charts with interval whiskers (dimension, domain, turn index); skipped without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        logger.info("matplotlib is not installed; no plots (pip install 'mmcr-datasets[plot]')")
        return []
    folder = out / "plots"
    folder.mkdir(exist_ok=True)
    written = []

    def bars(name, labels, stats, title):
        values = [s.get("value") or 0.0 for s in stats]
        lo = [v - (s.get("ci_low") if s.get("ci_low") is not None else v) for v, s in zip(values, stats)]
        hi = [(s.get("ci_high") if s.get("ci_high") is not None else v) - v for v, s in zip(values, stats)]
        fig, ax = plt.subplots(figsize=(max(4, 0.8 * len(labels) + 2), 3.5))
        ax.bar(range(len(labels)), values, yerr=[lo, hi], capsize=3, color="#4C72B0")
        ax.set_xticks(range(len(labels)))
        ax.set_xticklabels(labels, rotation=30, ha="right", fontsize=8)
        ax.set_ylim(0, 100)
        ax.set_ylabel("score (0-100)")
        ax.set_title(title)
        fig.tight_layout()
        path = folder / f"{name}.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)

    bars("dimensions", [DIMENSION_TITLES[k] for k in SCORE_KEYS], [scores["dimensions"][k] for k in SCORE_KEYS],
         "Judge dimensions (parsed turns)")
    bars("by_domain", list(scores["by_domain"]), [s["all"] for s in scores["by_domain"].values()],
         "Contextual accuracy by domain")
    bars("by_turn", [f"turn {t}" for t in scores["by_turn"]], [s["all"] for s in scores["by_turn"].values()],
         "Contextual accuracy by turn index")
    return written


def write_reports(out, run: dict, scores: dict, *, plots: bool = True) -> None:
    """``scores.json``, ``report.md`` and (optionally) plots into the run folder."""
    from .runner import write_atomic

    out = Path(out)
    write_atomic(out / "scores.json", json.dumps(scores, indent=2, ensure_ascii=False) + "\n")
    write_atomic(out / "report.md", format_markdown(run, scores))
    if plots:
        write_plots(out, scores)


def format_comparison_markdown(result: dict, name_a: str = "A", name_b: str = "B") -> str:
    """A markdown table of a paired comparison (delta = B − A)."""
    level = int(round(100 * result["bootstrap"]["level"]))
    ca = result["contextual_accuracy"]
    lines = [f"# {name_b} vs {name_a} on MMCR-Bench", "",
             f"{result['n_common_turns']} paired turn(s) in {result['n_dialogues']} dialogue(s); delta = B − A with "
             f"a {level}% paired bootstrap interval over dialogues.", "",
             "| metric | A | B | delta | p (bootstrap) |", "|---|---|---|---|---|"]

    def row(title, stat):
        a = "–" if stat.get("a") is None else f"{stat['a']:.1f}"
        b = "–" if stat.get("b") is None else f"{stat['b']:.1f}"
        p = "–" if stat.get("p_boot") is None else f"{stat['p_boot']:.3f}"
        return f"| {title} | {a} | {b} | {_delta(stat)} | {p} |"

    lines.append(row("**contextual accuracy** (all turns)", ca))
    lines.append(row("contextual accuracy (parsed in both)", result["contextual_accuracy_parsed_both"]))
    lines += [row(DIMENSION_TITLES[k], result["dimensions"][k]) for k in SCORE_KEYS]
    w = result["wins"]
    lines += ["", f"Per turn (overall score, parsed in both): B better {w['b_better']}, tie {w['tie']}, "
                  f"A better {w['a_better']}."]
    if result["warnings"]:
        lines += ["", "Warnings:", ""] + [f"- {w}" for w in result["warnings"]]
    return "\n".join(lines) + "\n"
