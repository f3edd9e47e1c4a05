"""One look for every plot in the evidence: legends outside the data, whole numbers on count axes, every
series labelled, small PNGs. Checks build their figure with :func:`figure` and hand it to :func:`finish`."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

DPI = 90  # ≈ 30-40 KiB per PNG: a report with five plots stays small


def figure(width: float = 9.0, height: float = 3.2) -> tuple[Figure, Axes]:
    """A new figure and its axes (the pyplot state machine is left alone: nothing shows twice)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI)
    return fig, fig.add_subplot()


def finish(
    fig: Figure,
    ax: Axes,
    *,
    title: str = "",
    xlabel: str = "",
    ylabel: str = "",
    counts: bool = False,
    counts_x: bool = False,
) -> Figure:
    """Label ``ax``, put its legend outside the plotted data, make count axes whole numbers, tighten."""
    from matplotlib.ticker import MaxNLocator

    if title:
        ax.set_title(title, fontsize=10, loc="left")
    if xlabel:
        ax.set_xlabel(xlabel)
    if ylabel:
        ax.set_ylabel(ylabel)
    if counts:
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylim(bottom=0)
    if counts_x:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlim(left=0)
    handles, labels = _all_series(fig)
    if handles:
        # Outside, to the right: a legend inside the axes hides data and deployment labels.
        ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    ax.grid(alpha=0.25)
    fig.tight_layout()
    return fig


def _all_series(fig: Figure) -> tuple[list, list[str]]:
    """Labelled artists of every axes of ``fig`` (a twin axis's series belong in the same legend)."""
    handles, labels = [], []
    for ax in fig.axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            if label and not label.startswith("_") and label not in labels:
                handles.append(handle)
                labels.append(label)
    return handles, labels
