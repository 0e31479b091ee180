"""PNG plots of a :class:`~mmcr_datasets.stats.DatasetStats` (the optional ``[plot]`` extra).

matplotlib is imported only here, only when a plot is asked for, with the non-interactive Agg
back-end. Without it, :func:`plot_stats` raises :class:`~mmcr_datasets.errors.MissingExtraError`
naming ``pip install 'mmcr-datasets[plot]'``; every other statistic works without it.
"""

from __future__ import annotations

from pathlib import Path

from .errors import require

PLOT_NAMES = ("domain", "subtopic", "lengths", "images_per_dialogue", "image_sizes")


def _pyplot():
    matplotlib = require("matplotlib", feature="statistics plots", extra="plot")
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def plot_stats(stats, out_dir, *, prefix: str = "", dpi: int = 110) -> dict:
    """Draw the plots of ``stats`` into ``out_dir``; return {plot name: path} for those drawn."""
    plt = _pyplot()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    d = stats.to_dict(histograms=True)
    c = d["counts"]
    written: dict = {}

    from matplotlib.ticker import MaxNLocator

    def save(fig, name):
        for ax in fig.axes:
            axis = ax.xaxis if name == "subtopic" else ax.yaxis
            axis.set_major_locator(MaxNLocator(integer=True))
        path = out_dir / f"{prefix}{name}.png"
        fig.tight_layout()
        fig.savefig(path, dpi=dpi)
        plt.close(fig)
        written[name] = path

    domains = list(c["domain"])
    if domains:
        dtypes = list(c["dialogue_type"])
        fig, ax = plt.subplots(figsize=(8, 3.6))
        bottom = [0] * len(domains)
        for t in dtypes:
            vals = [c["domain_x_dialogue_type"].get(dom, {}).get(t, 0) for dom in domains]
            ax.bar(domains, vals, bottom=bottom, label=t)
            bottom = [b + v for b, v in zip(bottom, vals)]
        ax.set_ylabel("dialogues")
        ax.set_title("Dialogues per domain")
        ax.legend(fontsize=8)
        ax.tick_params(axis="x", rotation=30, labelsize=8)
        save(fig, "domain")

    cross = c["domain_x_subtopic"]
    if cross:
        labels, vals, colors = [], [], []
        cmap = plt.get_cmap("tab10")
        for i, (dom, subs) in enumerate(cross.items()):
            for sub, v in subs.items():
                labels.append(f"{dom} / {sub}")
                vals.append(v)
                colors.append(cmap(i % 10))
        fig, ax = plt.subplots(figsize=(8, max(2.5, 0.22 * len(labels) + 1)))
        ax.barh(range(len(labels)), vals, color=colors)
        ax.set_yticks(range(len(labels)), labels, fontsize=7)
        ax.invert_yaxis()
        ax.set_xlabel("dialogues")
        ax.set_title("Dialogues per domain / sub-topic")
        save(fig, "subtopic")

    dists = d["distributions"]
    length_keys = [k for k in ("user_words", "assistant_words") if k in dists]
    if length_keys:
        fig, ax = plt.subplots(figsize=(8, 3.4))
        for k in length_keys:
            hist = {int(v): n for v, n in dists[k]["histogram"].items()}
            xs = sorted(hist)
            ax.plot(xs, [hist[x] for x in xs], label=k.replace("_", " "), drawstyle="steps-mid")
        ax.set_xlabel("words per message")
        ax.set_ylabel("messages")
        ax.set_title("Message lengths")
        ax.legend(fontsize=8)
        save(fig, "lengths")

    small = [k for k in ("turns", "images", "image_first_turn") if k in dists]
    if small:
        fig, axes = plt.subplots(1, len(small), figsize=(3.2 * len(small), 3))
        axes = axes if len(small) > 1 else [axes]
        titles = {"turns": "turns per dialogue", "images": "images per dialogue",
                  "image_first_turn": "turn of an image's first reference"}
        for ax, k in zip(axes, small):
            hist = {int(v): n for v, n in dists[k]["histogram"].items()}
            ax.bar(list(hist), list(hist.values()))
            ax.set_title(titles[k], fontsize=9)
            ax.set_xticks(list(hist))
        save(fig, "images_per_dialogue")

    img = d["images"]
    if img.get("scanned") and img.get("count") and img["width"].get("count"):
        fig, axes = plt.subplots(1, 2, figsize=(8, 3))
        for ax, k in zip(axes, ("width", "height")):
            hist = {int(v): n for v, n in img[k]["histogram"].items()}
            ax.hist(list(hist), weights=list(hist.values()), bins=min(30, max(1, len(hist))))
            ax.set_title(f"image {k} (px)", fontsize=9)
        save(fig, "image_sizes")
    return written
