"""The one plot style: legends outside the data, whole numbers on count axes, twin-axis series labelled."""

from __future__ import annotations

from opsnb.checks.plots import figure, finish


def test_legend_outside_the_axes_with_every_series() -> None:
    fig, ax = figure()
    ax.plot([0, 1, 2], [0.1, 0.5, 0.2], label="error rate")
    ax.axvline(1, label="dpl_9 went live")
    twin = ax.twinx()
    twin.plot([0, 1, 2], [3, 9, 4], label="requests/min")
    finish(fig, ax, title="Error rate", ylabel="share")
    legend = ax.get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["error rate", "dpl_9 went live", "requests/min"]
    fig.canvas.draw()
    box = legend.get_window_extent()
    assert box.x0 >= ax.get_window_extent().x1  # right of the plotted data, not over it


def test_count_axes_show_whole_numbers() -> None:
    fig, ax = figure()
    ax.bar(["a", "b"], [1, 2], label="errors")
    finish(fig, ax, counts=True)
    fig.canvas.draw()
    ticks = [t for t in ax.get_yticks() if ax.get_ylim()[0] <= t <= ax.get_ylim()[1]]
    assert ticks and all(float(t).is_integer() for t in ticks)
    assert ax.get_ylim()[0] == 0
