"""Benchmark goals: a measured ratio (or time) checked against its goal, recorded and reported.

A benchmark a user runs to measure their machine reports what it measured; it does not fail because the
machine was busy. Each goal check is recorded (extra_info["goal_checks"] and the session summary) and flagged
when missed; only with the explicit gate (`pytest bench/ --repbench-gate`, what the tool's own checks
use) does a missed goal fail the test.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class GoalCheck:
    """One measured value against its goal: `value <= goal + slack` is met (lower is better)."""

    name: str
    what: str
    value: float
    goal: float
    slack: float = 0.0
    load_average: float | None = None

    @property
    def limit(self) -> float:
        return self.goal + self.slack

    @property
    def met(self) -> bool:
        return math.isfinite(self.value) and self.value <= self.limit

    @property
    def status(self) -> str:
        return "met" if self.met else "MISSED"

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "limit": self.limit, "met": self.met}

    def line(self) -> str:
        slack = f" + slack {self.slack:g}" if self.slack else ""
        load = f", load {self.load_average:.1f}" if self.load_average is not None else ""
        return f"{self.status:<6} {self.name}: {self.what} {self.value:.3f} (goal <= {self.goal:g}{slack}{load})"


def check_goal(name: str, what: str, value: float, goal: float, slack: float = 0.0) -> GoalCheck:
    """The check, with the 1-minute load average now (a missed goal under load is often the load)."""
    try:
        load: float | None = float(os.getloadavg()[0])
    except (OSError, AttributeError):
        load = None
    return GoalCheck(name=name, what=what, value=float(value), goal=float(goal), slack=float(slack),
                     load_average=load)


def gate_message(check: GoalCheck) -> str:
    return (f"goal missed under --repbench-gate: {check.line()}. Rerun on a quiet machine before reading it as a "
            "regression (without --repbench-gate the benchmark records and flags it instead of failing)")


def summary_lines(checks: list[GoalCheck], gated: bool, cores: int | None = None) -> list[str]:
    """The closing summary: one line per goal, then what a missed goal means in this run."""
    if not checks:
        return []
    lines = [c.line() for c in checks]
    missed = [c for c in checks if not c.met]
    lines.append(f"{len(checks) - len(missed)} met / {len(missed)} missed of {len(checks)} goals"
                 + ("" if gated else " (recorded, not gated: pass --repbench-gate to fail on a missed goal)"))
    loads = [c.load_average for c in checks if c.load_average is not None]
    if missed and cores and loads and max(loads) > cores:
        lines.append(f"the load average reached {max(loads):.1f} on {cores} cores: other processes competed for "
                     "the CPU, so a missed goal here is not evidence of a regression; rerun on a quiet machine")
    return lines
