"""Fixtures shared across test files: the tiny controlled pair (one seeded weight set, causal vs bidirectional),
the real SmolLM2, and the report's inputs and rendered report, each built once per session.

The session fixtures are read-only: a test that changes one copies it into its own tmp_path first. Their
teardown compares every file with the snapshot taken when they were built, so a test that writes into them
fails rather than silently changing what later tests (in any order) read.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import installed_package as installed
import pytest
import report_fixtures as fx
import torch

from repbench.backbones import load_backbone


@pytest.fixture(scope="module")
def ar():
    return load_backbone("tiny-ar")


@pytest.fixture(scope="module")
def diff():
    return load_backbone("tiny-diffusion")


@pytest.fixture(scope="session")
def smollm2():
    """The real SmolLM2-135M, loaded once per session (read-only: no test changes its weights or tokenizer),
    so the encoders' per-tokenizer caches (the sparse filter's word pieces) are built once, not per module."""
    return load_backbone("smollm2-135m-instruct")


def _unchanged(root: Path, before: dict[str, str]) -> None:
    after = fx.snapshot(root)
    changed = sorted(set(before) ^ set(after) | {k for k in before.keys() & after.keys() if before[k] != after[k]})
    assert not changed, f"a test changed the session fixture {root}: {changed[:5]} (copy it into tmp_path first)"


# The session's report is rendered in a subprocess (~25 s on 2 cores) started as soon as collection shows a test
# will read it, so it renders beside the tests that run before that one instead of holding the suite up.
_EARLY: dict[str, object] = {}


def _results(factory) -> Path:
    return fx.full_results(factory.mktemp("report-results"))


def _results_energy(results: Path, factory) -> Path:
    root = factory.mktemp("report-results-energy") / "results"
    shutil.copytree(results, root)
    fx.bench_json(root / "bench" / "out.json", energy=True)
    return root


def _start_render(target: Path, results: Path, factory) -> tuple[Path, subprocess.Popen]:
    """`repbench report` from the installed package with pdflatex hidden (PATH empty): started, not awaited."""
    out = factory.mktemp("built-report") / "report"
    elsewhere = factory.mktemp("cwd")  # not the checkout: nothing may come from the source tree
    return out, installed.repbench_popen(target, elsewhere, "report", "--results", str(results), "--out", str(out),
                                         env={"PATH": str(elsewhere / "empty-bin")})


# A test file that names one of these reads the session's report or its inputs.
_REPORT_FIXTURES = ("built_report", "report_results", "report_results_energy", "installed_package")


def pytest_configure(config) -> None:
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0"))
    if workers > 1:  # each worker's torch threads sized to its share of the cores, not all of them each
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """Under pytest-xdist (`make test`), whole files go to a worker (module fixtures are built once), and every file
    that reads the session's report goes to one worker, which builds it when first asked while the others run the
    rest: the report is rendered once, not once per worker."""
    from xdist.scheduler import LoadScopeScheduling

    root = config.rootpath

    @functools.cache
    def reads_report(file: str) -> bool:
        path = root / file
        return path.is_file() and any(name in path.read_text(encoding="utf-8") for name in _REPORT_FIXTURES)

    class FileScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            file = nodeid.split("::", 1)[0]
            return "the session's report" if reads_report(file) else file

    return FileScheduling(config, log)


def pytest_collection_modifyitems(session, config, items) -> None:
    # An xdist worker builds the report when a test first asks (see above): starting it here would render it once
    # per worker.
    if config.option.collectonly or hasattr(config, "workerinput"):
        return
    if not any("built_report" in getattr(item, "fixturenames", ()) for item in items):
        return
    factory = config._tmp_path_factory  # the session's tmp_path_factory, before any fixture exists
    with contextlib.redirect_stdout(io.StringIO()):  # `repbench adapt`'s table: nothing a test reads
        _EARLY["results"] = _results(factory)
    _EARLY["energy"] = _results_energy(_EARLY["results"], factory)
    _EARLY["target"] = installed.install(factory)
    _EARLY["render"] = _start_render(_EARLY["target"], _EARLY["energy"], factory)


def pytest_sessionfinish(session, exitstatus) -> None:
    render = _EARLY.get("render")
    if render is not None and render[1].poll() is None:  # a run stopped before any test read the report
        render[1].kill()
        render[1].wait()


@pytest.fixture(scope="session")
def report_results(tmp_path_factory) -> Path:
    """fx.full_results(energy=False), built once: its `repbench adapt` run is most of the cost."""
    root = _EARLY.get("results") or _results(tmp_path_factory)
    before = fx.snapshot(root)
    yield root
    _unchanged(root, before)


@pytest.fixture(scope="session")
def report_results_energy(report_results, tmp_path_factory) -> Path:
    """fx.full_results(energy=True): the same directory with a bench JSON that records energy per query."""
    root = _EARLY.get("energy") or _results_energy(report_results, tmp_path_factory)
    before = fx.snapshot(root)
    yield root
    _unchanged(root, before)


@pytest.fixture(scope="session")
def installed_package(tmp_path_factory) -> Path:
    """repbench built as a wheel and installed with `pip install --target` (no checkout on the path)."""
    return _EARLY.get("target") or installed.install(tmp_path_factory)


@dataclass(frozen=True)
class BuiltReport:
    results: Path
    out: Path
    summary: dict  # report.json, the dict build_report returned
    stdout: str  # what `repbench report` printed
    proc: subprocess.CompletedProcess  # the run itself (its stderr names where repbench was imported from)


@pytest.fixture(scope="session")
def built_report(installed_package, report_results_energy, tmp_path_factory) -> BuiltReport:
    """`repbench report` on report_results_energy, rendered once per session: from the installed package (so
    the recipes and paper tables are the ones the wheel ships), with pdflatex hidden (PATH empty), so report.pdf
    is laid out by matplotlib; the pdflatex test compiles a copy of its report.tex."""
    out, started = _EARLY.get("render") or _start_render(installed_package, report_results_energy, tmp_path_factory)
    proc = installed.finish(started, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = BuiltReport(report_results_energy, out, json.loads((out / "report.json").read_text()), proc.stdout,
                         proc)
    before = fx.snapshot(out)
    yield report
    _unchanged(out, before)

