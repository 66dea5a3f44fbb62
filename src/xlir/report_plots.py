"""The report's figures, drawn with matplotlib (Agg) into PNG bytes.

Each function takes plain numbers (never a model or a study object) and returns PNG bytes, so
the report can inline them in HTML and write them beside the Markdown.
"""

from __future__ import annotations

import io

PALETTE = ["#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3",
           "#8C8C8C", "#CCB974", "#64B5CD"]


def _figure(width: float = 7.5, height: float = 3.6):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(width, height), dpi=110)
    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(axis="y", alpha=0.3)
    return fig, ax


def _png(fig) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def robustness(bars: dict[str, dict[str, tuple[float, float | None, float | None]]],
               measure: str, grouping: str) -> bytes:
    """Grouped bars: per method, its change vs zero-shot in each language group, with the
    95% CI as whiskers. `bars`: method -> group -> (estimate, ci low, ci high)."""
    methods = list(bars)
    groups = sorted({g for v in bars.values() for g in v})
    fig, ax = _figure()
    width = 0.8 / max(len(groups), 1)
    for j, group in enumerate(groups):
        xs = [i + (j - (len(groups) - 1) / 2) * width for i in range(len(methods))]
        est = [bars[m].get(group, (float("nan"), None, None)) for m in methods]
        ys = [e[0] for e in est]
        err = [[y - (lo if lo is not None else y) for y, lo, _ in est],
               [(hi if hi is not None else y) - y for y, _, hi in est]]
        ax.bar(xs, ys, width, yerr=err, capsize=3, label=group, color=PALETTE[j % len(PALETTE)],
               error_kw={"elinewidth": 0.8, "ecolor": "#333"})
        for x, (y, lo, hi) in zip(xs, est):
            if y == y:  # the label beyond the whisker
                end = hi if y >= 0 else lo
                ax.annotate(f"{y:+.3f}", (x, y if end is None else end), ha="center",
                            fontsize=7, va="bottom" if y >= 0 else "top")
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(range(len(methods)), methods, rotation=20)
    ax.set_ylabel(f"change in macro {measure} vs zero-shot")
    ax.legend(frameon=False, fontsize=8, title=f"{grouping} group", title_fontsize=8)
    return _png(fig)


def quality_vs_params(points: dict[str, tuple[int, float]], measure: str) -> bytes:
    """Scatter: trainable parameters (log scale) vs macro quality, one point per method."""
    fig, ax = _figure(6.5, 3.6)
    for i, (name, (params, value)) in enumerate(points.items()):
        ax.scatter([max(params, 1)], [value], color=PALETTE[i % len(PALETTE)], s=40)
        ax.annotate(name, (max(params, 1), value), fontsize=8, xytext=(4, 4),
                    textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xlabel("trainable parameters (log; frozen drawn at 1)")
    ax.set_ylabel(f"macro {measure}")
    return _png(fig)


def per_language_bars(values: dict[str, float], ylabel: str) -> bytes:
    """One bar per language (e.g. the xQG gain), coloured by sign."""
    langs = list(values)
    fig, ax = _figure()
    ys = [values[lang] for lang in langs]
    ax.bar(range(len(langs)), ys, color=[PALETTE[2] if y >= 0 else PALETTE[3] for y in ys])
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(range(len(langs)), langs, rotation=45, fontsize=8)
    ax.set_ylabel(ylabel)
    return _png(fig)


def alpha_sweep(curves: dict[str, dict[float, float]], measure: str) -> bytes:
    """Lines: alpha (0 = no augmentation) vs macro quality, one line per system."""
    fig, ax = _figure(6.5, 3.6)
    for i, (name, points) in enumerate(curves.items()):
        xs = sorted(points)
        ax.plot(xs, [points[x] for x in xs], marker="o", label=name, color=PALETTE[i % 10])
    ax.set_xlabel("alpha (passage vector = (1-a) p + a * sum q)")
    ax.set_ylabel(f"macro {measure}")
    ax.legend(frameon=False, fontsize=8)
    return _png(fig)


def fertility_scatter(points: dict[str, tuple[float, float, bool]], measure: str) -> bytes:
    """Scatter per language: pieces per word vs zero-shot quality; seen vs unseen marked."""
    fig, ax = _figure(6.5, 3.8)
    for seen, marker, colour, label in ((True, "o", PALETTE[0], "seen"),
                                        (False, "^", PALETTE[3], "unseen")):
        sub = {k: v for k, v in points.items() if v[2] == seen}
        ax.scatter([v[0] for v in sub.values()], [v[1] for v in sub.values()], marker=marker,
                   color=colour, label=f"{label} in pretraining", s=30)
        for lang, (x, y, _) in sub.items():
            ax.annotate(lang.split("_")[0], (x, y), fontsize=7, xytext=(3, 2),
                        textcoords="offset points")
    ax.set_xlabel("tokenizer pieces per word")
    ax.set_ylabel(f"zero-shot {measure}")
    ax.legend(frameon=False, fontsize=8)
    return _png(fig)


def learning_vs_forgetting(points: dict[str, list[tuple[float, float]]], xlabel: str,
                           ylabel: str) -> bytes:
    """Scatter, one point per trained model (seed), coloured by method: the in-domain change
    (x) against the change in unseen languages (y), both vs zero-shot, with the axes at 0."""
    fig, ax = _figure(6.5, 4.0)
    for i, (method, xy) in enumerate(points.items()):
        ax.scatter([x for x, _ in xy], [y for _, y in xy], color=PALETTE[i % len(PALETTE)],
                   s=40, label=method)
    ax.axhline(0, color="#444444", lw=0.8)
    ax.axvline(0, color="#444444", lw=0.8)
    ax.grid(axis="x", alpha=0.3)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(frameon=False, fontsize=8)
    return _png(fig)


def lr_trade_off(curves: dict[str, list[tuple[float, float, str]]], xlabel: str,
                 ylabel: str) -> bytes:
    """Lines, one per method through its learning rates (in the order given): in-domain change
    (x) against the change in unseen languages (y), each point labelled by its learning rate."""
    fig, ax = _figure(6.5, 4.0)
    for i, (method, points) in enumerate(curves.items()):
        points = sorted(points, key=lambda p: float(p[2]) if p[2] != "-" else 0.0)
        ax.plot([x for x, _, _ in points], [y for _, y, _ in points], marker="o",
                color=PALETTE[i % len(PALETTE)], label=method)
        for x, y, lr in points:
            ax.annotate(lr, (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.axhline(0, color="#444444", lw=0.8)
    ax.axvline(0, color="#444444", lw=0.8)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(frameon=False, fontsize=8)
    return _png(fig)
