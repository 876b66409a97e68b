"""Progress over benchmark cells with an ETA: a bench run can last tens of minutes on a busy CPU."""

from __future__ import annotations

from collections import defaultdict


def _clock(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


class CellProgress:
    """Cells done out of planned, elapsed time, and an ETA from the mean cell time of each group.

    A group is a benchmark file: its cells cost alike (a search cell is not an encoder-overhead cell),
    so the remaining cells of a group are estimated from that group's done cells, and groups not yet
    started from the mean over all done cells.
    """

    def __init__(self, planned: list[str]) -> None:
        self.remaining: dict[str, int] = defaultdict(int)
        for group in planned:
            self.remaining[group] += 1
        self.total = len(planned)
        self.done = 0
        self.elapsed = 0.0
        self._time: dict[str, list[float]] = defaultdict(list)

    def finished(self, group: str, seconds: float) -> None:
        self.done += 1
        self.elapsed += seconds
        self.remaining[group] = max(0, self.remaining[group] - 1)
        self._time[group].append(seconds)

    def eta_s(self) -> float | None:
        if not self.done:
            return None
        overall = self.elapsed / self.done
        return sum(n * (sum(self._time[g]) / len(self._time[g]) if self._time[g] else overall)
                   for g, n in self.remaining.items())

    def line(self) -> str:
        eta = self.eta_s()
        pct = 100.0 * self.done / self.total if self.total else 100.0
        rate = f", {self.elapsed / self.done:.1f} s/cell" if self.done else ""
        return (f"repbench: {self.done}/{self.total} cells ({pct:.0f}%), {_clock(self.elapsed)} elapsed{rate}, "
                + (f"ETA {_clock(eta)}" if eta is not None else "ETA unknown"))
