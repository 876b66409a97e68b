"""pytest-benchmark wiring for repbench's latency harness: options, cell grids, result hooks.

The measuring logic lives in repbench.benchmarking (harness.py, latency.py); this file only turns
command-line options into cells and passes results to pytest-benchmark's JSON.
"""

from __future__ import annotations

import os

os.environ.setdefault("CUDA_DEVICE_ORDER", "PCI_BUS_ID")  # torch and NVML indices agree (docs/methodology.md rule 2)
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from typing import Any  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

from repbench.benchmarking.cells import (  # noqa: E402
    SEARCH_KINDS,
    encode_cells,
    parse_int_list,
    parse_str_list,
    search_cells,
)
from repbench.benchmarking.encode_runner import EncodeCellRunner  # noqa: E402
from repbench.benchmarking.goals import GoalCheck, check_goal, gate_message, summary_lines  # noqa: E402
from repbench.benchmarking.harness import CellPlan  # noqa: E402
from repbench.benchmarking.latency import session_summary  # noqa: E402
from repbench.benchmarking.progress import CellProgress  # noqa: E402
from repbench.benchmarking.search_runner import SearchCellRunner, memory_cap  # noqa: E402
from repbench.benchmarking.session import BenchSession  # noqa: E402
from repbench.commands.encode_options import MODEL_DEFAULTS, MODEL_HELP  # noqa: E402
from repbench.encoders.options import batch_rule  # noqa: E402
from repbench.telemetry.environment import result_header  # noqa: E402
from repbench.telemetry.nvml import open_telemetry  # noqa: E402

# Defaults per device. On a GPU they follow docs/methodology.md rule 5 (>= 30 iterations and >= 2 s per
# cell); on CPU they are cut so the default grid finishes in < 5 minutes on 2 cores.
PLAN_DEFAULTS = {
    "cuda": {"min_rounds": 30, "min_time": 2.0, "max_time": 30.0, "warmup": 10, "warmup_max_time": None,
             "memory_iterations": 3},
    # CPU: >= 30 rounds (docs/methodology.md rule 5) where a cell is fast; the 3 s cap keeps the default run well under 5 min
    "cpu": {"min_rounds": 30, "min_time": 1.0, "max_time": 3.0, "warmup": 10, "warmup_max_time": 1.0,
            "memory_iterations": 1},
}
SEARCH_SIZE_DEFAULTS = {"cuda": "1000,3000,10000,30000,100000,300000,1000000", "cpu": "1000,10000"}


def _defaults(key: str) -> str:
    """The per-device default for a help text, read from PLAN_DEFAULTS so the help cannot drift from it."""
    return ", ".join(f"{'GPU' if kind == 'cuda' else 'CPU'} {'no limit' if d[key] is None else d[key]}"
                     for kind, d in PLAN_DEFAULTS.items())


class _ShowDefaults:
    """An option group whose --help shows each default (unless the help text already states it)."""

    def __init__(self, group: Any) -> None:
        self.group = group

    def addoption(self, name: str, **kw: Any) -> None:
        default, text = kw.get("default"), kw.get("help", "")
        if default not in (None, False) and "default" not in text and "GPU" not in text:
            kw["help"] = f"{text} (default {default})"
        self.group.addoption(name, **kw)


def pytest_addoption(parser: pytest.Parser) -> None:
    g = _ShowDefaults(parser.getgroup("repbench", "repbench latency harness"))
    g.addoption("--backbones", default="tiny-ar,tiny-diffusion",
                help="comma list of backbones (pairs such as tiny-ar,tiny-diffusion; smollm2-135m-instruct,"
                     "smollm2-135m-instruct:bidirectional; <paper>:random on a GPU)")
    g.addoption("--encoders", default="default",
                help="comma list of encoders, or 'default' (sequential for ar, parallel for diffusion); "
                     "meanpool/lasttoken add the single-pass baselines")
    g.addoption("--k", default="1,2,4,8,16", help="comma list of K (representatives per text)")
    g.addoption("--input-tokens", default="32,128,512", help="comma list of synthetic text lengths (tokens)")
    g.addoption("--batch-size", default="1", help="comma list of batch sizes")
    # The same model defaults as `repbench encode` and `repbench evaluate` (one definition).
    g.addoption("--device", default=MODEL_DEFAULTS["device"], help=MODEL_HELP["device"])
    g.addoption("--dtype", default=MODEL_DEFAULTS["dtype"], help=MODEL_HELP["dtype"])
    g.addoption("--attn", default=MODEL_DEFAULTS["attn"], help=MODEL_HELP["attn"])
    g.addoption("--warmup", default=None, type=int, help=f"untimed iterations per cell at the full shape ({_defaults('warmup')})")
    g.addoption("--warmup-max-time", default=None, type=float,
                help=f"stop warm-up early after this many seconds, >= 2 iterations ({_defaults('warmup_max_time')})")
    g.addoption("--min-rounds", default=None, type=int, help=f"timed iterations per cell, at least ({_defaults('min_rounds')})")
    g.addoption("--min-time", default=None, type=float, help=f"timed seconds per cell, at least ({_defaults('min_time')})")
    g.addoption("--max-time", default=None, type=float,
                help=f"cap on timed seconds per cell ({_defaults('max_time')}), never below 5 rounds")
    g.addoption("--energy-window", default=0.5, type=float, help="seconds per energy window (>= 0.1; GPU only)")
    g.addoption("--order", default="interleave", help="interleave (ABAB across families) | shuffle (seeded)")
    g.addoption("--seed", default=0, type=int, help="seed for synthetic inputs and --order shuffle")
    g.addoption("--search-sizes", default=None,
                help="comma list of index sizes (GPU default 1K..1M log grid; CPU 1000,10000)")
    g.addoption("--search-kinds", default=",".join(SEARCH_KINDS), help="comma list of dense, maxsim, sparse")
    g.addoption("--search-kp", default="1,4,16", help="comma list of K_p for exact MaxSim")
    g.addoption("--search-kq", default=4, type=int, help="query vectors K_q for MaxSim")
    g.addoption("--search-batch", default="1,32", help="comma list of query batch sizes")
    g.addoption("--search-hidden", default="auto",
                help="comma list of vector sizes, or auto (the hidden sizes of --backbones)")
    g.addoption("--search-depth", default=100, type=int, help="top-k depth of every search")
    g.addoption("--search-max-gib", default=None, type=float,
                help="skip search cells whose index needs more (default: 25%% of available memory)")
    g.addoption("--repbench-gate", action="store_true", default=False,
                help="fail a benchmark whose measured ratio or time misses its goal (the tool's own checks); "
                     "by default goals are recorded in extra_info.goal_checks, flagged and summarised, never failed")


def _opt(config: pytest.Config, name: str) -> Any:
    return config.getoption(name)


_OPTIONS = pytest.StashKey[dict[str, Any]]()


def _options(config: pytest.Config) -> dict[str, Any]:
    """Every option parsed and checked once per session (grids, the header and the context all read this)."""
    if _OPTIONS in config.stash:
        return config.stash[_OPTIONS]
    device = _device(config)
    kind = "cuda" if device.type == "cuda" else "cpu"
    backbones = parse_str_list(_opt(config, "--backbones"))
    opts = {
        "device": device, "kind": kind, "dtype": _dtype(config, device), "plan": _plan(config, kind),
        "backbones": backbones, "backbone_families": _families(backbones),
        "encoders": parse_str_list(_opt(config, "--encoders")),
        "k": parse_int_list(_opt(config, "--k"), "k"),
        "input_tokens": parse_int_list(_opt(config, "--input-tokens"), "input-tokens"),
        "batch_size": parse_int_list(_opt(config, "--batch-size"), "batch-size"),
        "search_sizes_text": _opt(config, "--search-sizes") or SEARCH_SIZE_DEFAULTS[kind],
        "search_kinds": parse_str_list(_opt(config, "--search-kinds")),
        "search_kp": parse_int_list(_opt(config, "--search-kp"), "search-kp"),
        "search_batch": parse_int_list(_opt(config, "--search-batch"), "search-batch"),
    }
    opts["search_sizes"] = parse_int_list(opts["search_sizes_text"], "search-sizes")
    config.stash[_OPTIONS] = opts
    return opts


def _device(config: pytest.Config) -> torch.device:
    from repbench.backbones.loading import resolve_device

    return resolve_device(_opt(config, "--device"))


def _families(names: list[str]) -> list[tuple[str, str]]:
    from repbench.backbones import get_spec

    return [(name, get_spec(name).family) for name in names]


def _encoders_for(chosen: list[str]):
    from repbench.encoders.registry import ENCODERS, default_encoder, encoders_for_family
    from repbench.errors import did_you_mean

    bad = [e for e in chosen if e != "default" and e not in ENCODERS]
    if bad:
        raise pytest.UsageError(f"--encoders: unknown encoder {bad[0]!r}{did_you_mean(bad[0], ['default', *ENCODERS])}"
                                f"; use default or {', '.join(ENCODERS)}")

    def for_family(family: str) -> list[str]:
        out = []
        for e in chosen:
            e = default_encoder(family) if e == "default" else e
            if e in encoders_for_family(family) and e not in out:
                out.append(e)
        return out

    return for_family


def _hidden_sizes(config: pytest.Config) -> list[int]:
    text = _opt(config, "--search-hidden")
    if text != "auto":
        return parse_int_list(text, "search-hidden")
    from repbench.backbones import get_spec

    sizes = []
    for name in _options(config)["backbones"]:
        spec = get_spec(name)
        try:
            h = int(spec.config_dict()["hidden_size"])
        except Exception:  # packaged GGUF model: no bundled config, read it from the loaded model
            from repbench.backbones.loading import _smollm2_config

            h = int(_smollm2_config().hidden_size)
        if h not in sizes:
            sizes.append(h)
    return sizes


def _plan(config: pytest.Config, kind: str) -> CellPlan:
    d = PLAN_DEFAULTS[kind]
    pick = lambda name, key: _opt(config, name) if _opt(config, name) is not None else d[key]  # noqa: E731
    return CellPlan(warmup=pick("--warmup", "warmup"), warmup_max_time_s=pick("--warmup-max-time", "warmup_max_time"),
                    min_rounds=pick("--min-rounds", "min_rounds"), min_time_s=pick("--min-time", "min_time"),
                    max_time_s=pick("--max-time", "max_time"), memory_iterations=d["memory_iterations"],
                    energy_window_s=_opt(config, "--energy-window"))


def _dtype(config: pytest.Config, device: torch.device) -> str:
    dt = _opt(config, "--dtype")
    if dt == "auto":
        return "bfloat16" if device.type == "cuda" else "float32"
    return dt


def _config_dict(config: pytest.Config) -> dict[str, Any]:
    o = _options(config)
    return {
        "backbones": o["backbones"], "encoders": o["encoders"], "k": o["k"], "input_tokens": o["input_tokens"],
        "batch_size": o["batch_size"], "device": str(o["device"]), "dtype": o["dtype"],
        "batch_rule": batch_rule(o["dtype"]), "attn": _opt(config, "--attn"), "plan": o["plan"].__dict__,
        "order": _opt(config, "--order"),
        "seed": _opt(config, "--seed"),
        "search": {
            "sizes": o["search_sizes_text"],
            "kinds": _opt(config, "--search-kinds"), "k_p": _opt(config, "--search-kp"),
            "k_q": _opt(config, "--search-kq"), "batch": _opt(config, "--search-batch"),
            "hidden": _opt(config, "--search-hidden"), "depth": _opt(config, "--search-depth"),
        },
        "torch_threads": torch.get_num_threads(),
        "kv_cache": "as implemented by repbench.encoders (sequential: KV cache, greedy, exactly K tokens)",
    }


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    config = metafunc.config
    if "encode_cell" in metafunc.fixturenames:
        o = _options(config)
        cells = encode_cells(o["backbone_families"], _encoders_for(o["encoders"]), o["k"], o["input_tokens"],
                             o["batch_size"], order=_opt(config, "--order"), seed=_opt(config, "--seed"))
        metafunc.parametrize("encode_cell", cells, ids=[c.id for c in cells])
    if "search_cell" in metafunc.fixturenames:
        o = _options(config)
        cells = search_cells(o["search_sizes"], o["search_kp"], _opt(config, "--search-kq"), o["search_batch"],
                             _hidden_sizes(config), kinds=o["search_kinds"])
        metafunc.parametrize("search_cell", cells, ids=[c.id for c in cells])


_SESSION = pytest.StashKey[BenchSession]()
_ENCODE = pytest.StashKey[EncodeCellRunner]()


@pytest.fixture(scope="session")
def bench_session(request: pytest.FixtureRequest) -> BenchSession:
    config = request.config
    o = _options(config)
    device = o["device"]
    if device.type == "cuda":
        torch.cuda.set_device(device)  # pytorch#135531: make the current device explicit
    nvml, note = open_telemetry(device)
    session = BenchSession(device=device, dtype=o["dtype"], attn=_opt(config, "--attn"), plan=o["plan"],
                           nvml=nvml, telemetry_note=note, seed=_opt(config, "--seed"))
    config.stash[_SESSION] = session
    return session


@pytest.fixture(scope="session")
def encode_runner(request: pytest.FixtureRequest, bench_session: BenchSession) -> EncodeCellRunner:
    runner = EncodeCellRunner(bench_session)
    request.config.stash[_ENCODE] = runner  # the JSON header and the summary read its backbones
    return runner


@pytest.fixture(scope="session")
def search_runner(request: pytest.FixtureRequest, bench_session: BenchSession) -> SearchCellRunner:
    config = request.config
    return SearchCellRunner(bench_session, depth=_opt(config, "--search-depth"),
                            max_bytes=memory_cap(bench_session.device, _opt(config, "--search-max-gib")))


_GOALS = pytest.StashKey[list[GoalCheck]]()
_PROGRESS = pytest.StashKey[CellProgress]()


@pytest.fixture
def goal(request: pytest.FixtureRequest, benchmark):
    """`goal(what, value, goal, slack=0.0)`: record a measured value against its goal (lower is better).

    Recorded in extra_info["goal_checks"] (a list) and the session summary; a missed goal is printed as MISSED
    and fails the test only under --repbench-gate, because a busy machine must not fail a measurement.
    """
    config = request.config

    def check(what: str, value: float, target: float, slack: float = 0.0) -> GoalCheck:
        result = check_goal(request.node.name, what, value, target, slack)
        benchmark.extra_info.setdefault("goal_checks", []).append(result.as_dict())
        config.stash.setdefault(_GOALS, []).append(result)
        print(f"\n{result.line()}", end="")
        if not result.met and config.getoption("--repbench-gate"):
            pytest.fail(gate_message(result), pytrace=False)
        return result

    return check


def pytest_collection_finish(session: pytest.Session) -> None:
    session.config.stash[_PROGRESS] = CellProgress([item.nodeid.split("::")[0] for item in session.items])


_DURATIONS: dict[str, float] = {}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    # One line per finished cell (setup + call + teardown), so a long run shows where it is and an ETA.
    _DURATIONS[item.nodeid] = _DURATIONS.get(item.nodeid, 0.0) + call.duration
    yield
    progress = item.config.stash.get(_PROGRESS, None)
    if call.when != "teardown" or progress is None:
        return
    progress.finished(item.nodeid.split("::")[0], _DURATIONS.pop(item.nodeid, 0.0))
    tr = item.config.pluginmanager.get_plugin("terminalreporter")
    if tr is not None and progress.total > 1:
        tr.ensure_newline()
        tr.write_line(progress.line())


@pytest.fixture
def pedantic_runner(benchmark):
    """Runs our timed target through pytest-benchmark (which also times each call on the host)."""

    def run(target, rounds: int) -> None:
        benchmark.pedantic(target, rounds=rounds, warmup_rounds=0, iterations=1)

    return run


@pytest.fixture
def record_cell(benchmark):
    """Put a cell's extra_info into the benchmark; a skipped cell goes to the JSON via the hook below."""

    def record(info: dict[str, Any]) -> None:
        if info.get("status") == "skipped":
            pytest.skip(info["reason"])
        benchmark.extra_info.update(info)

    return record


def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict[str, Any]) -> None:
    machine_info["repbench"] = result_header(_config_dict(config), kind="latency")
    machine_info["repbench"]["peaks"] = _peaks(config)


_PEAKS = pytest.StashKey[dict[str, Any]]()


def _peaks(config: pytest.Config) -> dict[str, Any]:
    """This device's achieved matmul FLOP/s and read bandwidth (about a second), once per session."""
    if _PEAKS not in config.stash:
        from repbench.telemetry.peaks import measure_peaks

        o = _options(config)
        config.stash[_PEAKS] = measure_peaks(o["device"], dtypes=[o["dtype"]])
    return config.stash[_PEAKS]


def pytest_benchmark_update_json(config: pytest.Config, benchmarks: Any, output_json: dict[str, Any]) -> None:
    session = config.stash.get(_SESSION, None)
    if session is None:
        return
    loaded = config.stash[_ENCODE].loaded if _ENCODE in config.stash else {}
    header = output_json.setdefault("machine_info", {}).setdefault("repbench", {})
    header["cold_start"] = {name: lb.cold_start for name, lb in loaded.items()}
    header["telemetry_note"] = session.telemetry_note
    from repbench.analysis.roofline_cells import annotate_bench, architecture_record

    header["architectures"] = {name: architecture_record(lb.backbone.model.config) for name, lb in loaded.items()}
    # Skipped cells (OOM, memory cap) never reach pytest-benchmark's stats; keep them in the file anyway,
    # in a form `pytest-benchmark compare` still loads.
    output_json["benchmarks"].extend(s.as_benchmark() for s in session.skipped)
    annotate_bench(output_json)  # each encode cell's floor, MBU and MFU (extra_info.roofline)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    lines = summary_lines(config.stash.get(_GOALS, []), gated=config.getoption("--repbench-gate"),
                          cores=os.cpu_count())
    if lines:
        terminalreporter.write_sep("=", "repbench: goals (measured value vs goal; lower is better)")
        for line in lines:
            terminalreporter.write_line(line)
    session = config.stash.get(_SESSION, None)
    if session is None or not session.results:
        return
    encode = config.stash.get(_ENCODE, None)
    table, notes = session_summary(session.results, session.telemetry_note,
                                   encode.loaded if encode is not None else {}, session.skipped)
    if table:
        terminalreporter.write_sep("=", "repbench: encoding latency at each K relative to K=1 (median)")
        terminalreporter.write_line(table)
    for line in notes:
        terminalreporter.write_line(line)
