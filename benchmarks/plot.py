"""``--plot PATH``: one panel per measure, each contestant's figure as a ratio to this SDK's
(this SDK = 1, the bars' whiskers the min–max over repeats). matplotlib is imported here
only, when a chart is asked for."""

from __future__ import annotations

from typing import Any

from benchmarks.contestants import Contestant
from benchmarks.report import TITLES, direction
from benchmarks.runner import Plan


def plot(path: str, summary: dict[str, Any], columns: list[Contestant], measures: tuple[str, ...], plan: Plan) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [m for m in measures if m in summary]
    cols = 2
    rows = (len(shown) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(12, 3.2 * rows), squeeze=False)
    colors = {"sdk": "#1f77b4", "floor": "#7f7f7f", "socket": "#c7c7c7", "tutorial": "#bcbd22"}
    for ax, measure in zip(axes.flat, shown):
        row = summary[measure]
        labels, values, low, high, bar_colors = [], [], [], [], []
        for c in columns:
            entry = row.get(c.key)
            if entry is None:
                continue
            r = {"median": 1.0, "min": 1.0, "max": 1.0} if c.key == "sdk" else entry.get("ratio")
            if r is None:
                continue
            labels.append(c.label)
            values.append(r["median"])
            low.append(r["median"] - r["min"])
            high.append(r["max"] - r["median"])
            bar_colors.append(colors.get(c.key, "#ff7f0e"))
        ax.bar(range(len(values)), values, yerr=[low, high], color=bar_colors, capsize=3)
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_xticks(range(len(labels)), labels, fontsize=7, rotation=20, ha="right")
        if values and max(values) / max(min(values), 1e-9) > 20:
            ax.set_yscale("log")
        ax.set_ylabel(f"× genesys_gateway ({direction(measure)})", fontsize=7)
        ax.set_title(TITLES[measure].format(threads=plan.threads, calls=plan.calls), fontsize=9)
        for i, v in enumerate(values):  # above the whisker
            ax.annotate(f"{v:.2f}×", (i, v + high[i]), xytext=(0, 2), textcoords="offset points",
                        ha="center", va="bottom", fontsize=7)
        ax.margins(y=0.12)
    for ax in list(axes.flat)[len(shown):]:
        ax.set_visible(False)
    fig.suptitle("genesys_gateway benchmarks: each contestant as a ratio to this SDK (= 1)", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
