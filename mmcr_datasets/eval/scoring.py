"""Scores of a run and the paired comparison of two runs.

Contextual accuracy (the project's definition; the paper does not publish one) is the mean overall
judge score times 10, on a 0–100 scale, reported two ways:

* ``all``: over every turn, a turn without a usable judgement (unparsed reply, failed call, no
  model answer) counting as 0 — the number to compare models by;
* ``parsed``: over the turns with a valid judgement only.

Per-dimension scores are means over parsed turns, also times 10. Breakdowns: domain, sub-topic,
dialogue type and turn index (1-based).

Confidence intervals are percentile bootstrap intervals that resample *dialogues* (turns of one
dialogue are correlated, so resampling turns would make the intervals too narrow). The paired
comparison resamples the same dialogues for both runs and reports the delta B − A with its
interval and the share of bootstrap deltas on the other side of zero.
"""

from __future__ import annotations

import zlib
from collections import defaultdict
from typing import Optional, Sequence

from .judge import SCORE_KEYS

GROUP_FIELDS = (("domain", "by_domain"), ("subtopic", "by_subtopic"), ("dialogue_type", "by_dialogue_type"),
                ("turn", "by_turn"))


def _clusters(records: Sequence[dict], value_fn, mask_fn) -> tuple[list, list]:
    """Per-dialogue (sum of values, count) over records passing ``mask_fn``, in first-seen order."""
    sums: dict = {}
    counts: dict = {}
    for rec in records:
        did = rec["dialogue_id"]
        sums.setdefault(did, 0.0)
        counts.setdefault(did, 0)
        if mask_fn(rec):
            sums[did] += value_fn(rec)
            counts[did] += 1
    keys = list(sums)
    return [sums[k] for k in keys], [counts[k] for k in keys]


def _rng(seed: int, label: str):
    import numpy as np

    return np.random.default_rng([seed, zlib.crc32(label.encode())])


def ratio_with_ci(sums: Sequence[float], counts: Sequence[int], *, n_boot: int, seed: int, label: str,
                  level: float = 0.95, scale: float = 10.0) -> dict:
    """``scale * sum(sums) / sum(counts)`` with a cluster-bootstrap percentile interval."""
    import numpy as np

    s = np.asarray(sums, dtype=float)
    c = np.asarray(counts, dtype=float)
    total = c.sum()
    value = float(scale * s.sum() / total) if total else None
    result = {"value": _round(value), "ci_low": None, "ci_high": None, "n": int(total)}
    if value is None or n_boot <= 0 or len(s) < 2:
        return result
    idx = _rng(seed, label).integers(0, len(s), size=(n_boot, len(s)))
    bs, bc = s[idx].sum(axis=1), c[idx].sum(axis=1)
    ok = bc > 0
    stats = scale * bs[ok] / bc[ok]
    alpha = (1 - level) / 2
    result["ci_low"], result["ci_high"] = (_round(float(np.quantile(stats, alpha))),
                                           _round(float(np.quantile(stats, 1 - alpha))))
    return result


def _round(x: Optional[float]) -> Optional[float]:
    return None if x is None else round(x, 4)


def _is_parsed(rec: dict) -> bool:
    return rec.get("status") == "ok" and rec.get("scores") is not None


def _accuracy(records, *, n_boot, seed, label, level) -> dict:
    all_s, all_c = _clusters(records, lambda r: r["scores"]["overall"] if _is_parsed(r) else 0.0, lambda r: True)
    par_s, par_c = _clusters(records, lambda r: r["scores"]["overall"], _is_parsed)
    return {
        "n_turns": len(records),
        "n_parsed": sum(1 for r in records if _is_parsed(r)),
        "n_dialogues": len(all_s),
        "all": ratio_with_ci(all_s, all_c, n_boot=n_boot, seed=seed, label=label, level=level),
        "parsed": ratio_with_ci(par_s, par_c, n_boot=n_boot, seed=seed, label=label, level=level),
    }


def reason_kind(status: str, reason: str) -> str:
    """A reason without its details, for counting: ``out_of_range+missing``, ``call_failed:timeout``."""
    if status == "unparsed":
        return "+".join(sorted({part.split(":")[0] for part in reason.split(";")}))
    return ":".join(part.strip() for part in reason.split(":")[:2])


def score_turns(records: Sequence[dict], *, n_boot: int = 1000, seed: int = 0, level: float = 0.95) -> dict:
    """All scores of a run from its per-turn records (see the module docstring)."""
    status_counts: dict = defaultdict(int)
    reasons: dict = defaultdict(int)
    for rec in records:
        status_counts[rec.get("status") or "unknown"] += 1
        if rec.get("status") != "ok" and rec.get("reason"):
            reasons[reason_kind(rec["status"], str(rec["reason"]))] += 1
    head = _accuracy(records, n_boot=n_boot, seed=seed, label="total", level=level)
    dims = {}
    for key in SCORE_KEYS:
        s, c = _clusters(records, lambda r, k=key: r["scores"][k], _is_parsed)
        dims[key] = ratio_with_ci(s, c, n_boot=n_boot, seed=seed, label="dim/" + key, level=level)
    out = {
        "metric": "contextual_accuracy = 10 x mean overall judge score (0-100)",
        "contextual_accuracy": head["all"]["value"],
        "contextual_accuracy_parsed": head["parsed"]["value"],
        "total": head,
        "dimensions": dims,
        "status_counts": dict(status_counts),
        "unparsed_reasons": dict(reasons),
        "bootstrap": {"unit": "dialogue", "n_boot": n_boot, "seed": seed, "level": level},
    }
    for field, name in GROUP_FIELDS:
        groups: dict = defaultdict(list)
        for rec in records:
            groups[rec.get(field)].append(rec)
        ordered = sorted(groups, key=lambda g: (g is None, g if not isinstance(g, str) else g.lower()))
        out[name] = {str(g) if g is not None else "unknown": _accuracy(groups[g], n_boot=n_boot, seed=seed,
                                                                         label=f"{field}/{g}", level=level)
                     for g in ordered}
    return out


def compare_runs(a: Sequence[dict], b: Sequence[dict], *, n_boot: int = 1000, seed: int = 0, level: float = 0.95,
                 run_a: Optional[dict] = None, run_b: Optional[dict] = None) -> dict:
    """Paired comparison of two runs' per-turn records on the turns they share (delta = B − A)."""
    import numpy as np

    index_a = {(r["dialogue_id"], r["turn"]): r for r in a}
    index_b = {(r["dialogue_id"], r["turn"]): r for r in b}
    common = [k for k in index_a if k in index_b]
    warnings = []
    if len(common) < max(len(index_a), len(index_b)):
        warnings.append(f"only {len(common)} turn(s) are in both runs (A has {len(index_a)}, B has {len(index_b)})")
    if run_a and run_b:
        for field, getter in (("history mode", lambda r: r.get("history")),
                              ("judge model", lambda r: (r.get("judge") or {}).get("model")),
                              ("judge prompt", lambda r: (r.get("judge") or {}).get("prompt_sha"))):
            if getter(run_a) != getter(run_b):
                warnings.append(f"the runs differ in {field}: {getter(run_a)!r} vs {getter(run_b)!r}; "
                                "the delta mixes that difference with the models'")
    dialogues = list(dict.fromkeys(k[0] for k in common))
    pos = {d: i for i, d in enumerate(dialogues)}

    def per_dialogue(pairs_filter, value):
        sa, sb, cnt = np.zeros(len(dialogues)), np.zeros(len(dialogues)), np.zeros(len(dialogues))
        for k in common:
            ra, rb = index_a[k], index_b[k]
            if not pairs_filter(ra, rb):
                continue
            i = pos[k[0]]
            sa[i] += value(ra)
            sb[i] += value(rb)
            cnt[i] += 1
        return sa, sb, cnt

    def delta_stats(sa, sb, cnt, label):
        total = cnt.sum()
        if not total:
            return {"a": None, "b": None, "delta": None, "ci_low": None, "ci_high": None, "p_boot": None, "n": 0}
        res = {"a": _round(10 * sa.sum() / total), "b": _round(10 * sb.sum() / total),
               "delta": _round(10 * (sb.sum() - sa.sum()) / total), "ci_low": None, "ci_high": None,
               "p_boot": None, "n": int(total)}
        if n_boot > 0 and len(dialogues) >= 2:
            idx = _rng(seed, "compare/" + label).integers(0, len(dialogues), size=(n_boot, len(dialogues)))
            c = cnt[idx].sum(axis=1)
            ok = c > 0
            d = 10 * (sb[idx].sum(axis=1) - sa[idx].sum(axis=1))[ok] / c[ok]
            alpha = (1 - level) / 2
            res["ci_low"], res["ci_high"] = _round(float(np.quantile(d, alpha))), _round(float(np.quantile(d, 1 - alpha)))
            observed = res["delta"]
            other_side = np.mean(d <= 0) if observed > 0 else np.mean(d >= 0) if observed < 0 else 1.0
            res["p_boot"] = _round(float(min(1.0, 2 * other_side)))
        return res

    overall = lambda r: r["scores"]["overall"] if _is_parsed(r) else 0.0  # noqa: E731
    result = {
        "n_common_turns": len(common),
        "n_dialogues": len(dialogues),
        "contextual_accuracy": delta_stats(*per_dialogue(lambda ra, rb: True, overall), "all"),
        "contextual_accuracy_parsed_both": delta_stats(
            *per_dialogue(lambda ra, rb: _is_parsed(ra) and _is_parsed(rb), overall), "parsed"),
        "dimensions": {},
        "wins": None,
        "bootstrap": {"unit": "dialogue", "n_boot": n_boot, "seed": seed, "level": level, "paired": True},
        "warnings": warnings,
    }
    both = lambda ra, rb: _is_parsed(ra) and _is_parsed(rb)  # noqa: E731
    for key in SCORE_KEYS:
        result["dimensions"][key] = delta_stats(*per_dialogue(both, lambda r, k=key: r["scores"][k]), "dim/" + key)
    wins = ties = losses = 0
    for k in common:
        ra, rb = index_a[k], index_b[k]
        if both(ra, rb):
            da, db = ra["scores"]["overall"], rb["scores"]["overall"]
            wins += db > da
            ties += db == da
            losses += db < da
    result["wins"] = {"b_better": wins, "tie": ties, "a_better": losses}
    return result
