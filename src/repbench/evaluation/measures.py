"""trec_eval 10's measure syntax, resolved into the output names it prints and the pytrec_eval requests.

Accepted, as trec_eval accepts them (``trec_eval -m``):

- a measure name: ``map``, ``P`` (its default cutoffs), ``ndcg`` (default gains);
- dot syntax with parameters: ``P.5,7,3``, ``ndcg_cut.10,20``, ``iprec_at_recall..10,.5``,
  ``utility.2,-1,0,0``, ``ndcg.1=3,2=9,4=4.5``, ``relstring.20``;
- a nickname: ``official``, ``set``, ``all_trec`` (the measures pytrec_eval 0.5.11 has; trec_eval 10's
  ``rbp``, ``rbp_resid`` and ``unj`` are not among them);

and, as repbench always accepted, an output name (``ndcg_cut_10``, ``P_10``, ``iprec_at_recall_0.10``)
and ``recip_rank_<N>``, reciprocal rank on the top N (MRR@N, docs/method.md §6.5); and ir_measures' names
(``nDCG@10``, ``P@5``, ``R@100``, ``RR@10``, ``AP``, ``AP@100``, ``Success@5``, ``Rprec``, ``Bpref``,
case-insensitive), translated to the trec_eval measure they compute (``nDCG@10`` is ``ndcg_cut.10``;
results carry trec_eval's output names).

Parameters are checked here because pytrec_eval's C code crashes the interpreter on some malformed ones
(e.g. ``ndcg.1``) instead of raising.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from repbench.errors import RepbenchError, did_you_mean

# How trec_eval takes parameters for each measure (meas_init.c), in trec_eval's print order (measures.c).
NONE, LONG_CUT, DOUBLE_CUT, DOUBLE_PARAMS, PAIRS = "none", "long_cut", "double_cut", "double_params", "pairs"
_CUTS = "5,10,15,20,30,100,200,500,1000"
# What `evaluate`/`eval-run` report unless told otherwise (here, not in metrics: --help reads it without pandas).
DEFAULT_MEASURES: tuple[str, ...] = ("ndcg_cut_10", "recip_rank_10", "map", "recall_100", "recall_1000")
CATALOGUE: dict[str, tuple[str, str | None]] = {  # base -> (parameter kind, default parameters)
    "runid": (NONE, None), "num_q": (NONE, None), "num_ret": (NONE, None), "num_rel": (NONE, None),
    "num_rel_ret": (NONE, None), "map": (NONE, None), "gm_map": (NONE, None), "Rprec": (NONE, None),
    "bpref": (NONE, None), "recip_rank": (NONE, None),
    "iprec_at_recall": (DOUBLE_CUT, "0,.1,.2,.3,.4,.5,.6,.7,.8,.9,1"), "P": (LONG_CUT, _CUTS),
    "relstring": (DOUBLE_PARAMS, None), "recall": (LONG_CUT, _CUTS), "infAP": (NONE, None),
    "gm_bpref": (NONE, None), "Rprec_mult": (DOUBLE_CUT, ".2,.4,.6,.8,1,1.2,1.4,1.6,1.8,2"),
    "utility": (DOUBLE_PARAMS, None), "11pt_avg": (DOUBLE_PARAMS, None), "binG": (NONE, None),
    "G": (PAIRS, None), "ndcg": (PAIRS, None), "ndcg_rel": (PAIRS, None), "Rndcg": (PAIRS, None),
    "ndcg_cut": (LONG_CUT, _CUTS), "map_cut": (LONG_CUT, _CUTS), "relative_P": (LONG_CUT, _CUTS),
    "success": (LONG_CUT, "1,5,10"), "set_P": (NONE, None), "set_relative_P": (NONE, None),
    "set_recall": (NONE, None), "set_map": (NONE, None), "set_F": (DOUBLE_PARAMS, None),
    "num_nonrel_judged_ret": (NONE, None),
}
ORDER = {base: i for i, base in enumerate(CATALOGUE)}

# Kinds of value, which decide how a measure is printed and averaged into trec_eval's "all" line.
COUNTS = frozenset({"num_ret", "num_rel", "num_rel_ret", "num_nonrel_judged_ret"})  # integers, summed
GEOMETRIC = frozenset({"gm_map", "gm_bpref"})  # geometric mean; per query only in the frame, never printed
TEXT = frozenset({"runid", "relstring"})  # strings: runid only in "all", relstring only per query
MIN_GEO_MEAN = 1e-5  # trec_eval.h: the floor under a query's value before its log is taken

NICKNAMES: dict[str, tuple[str, ...]] = {  # measures.c, less what pytrec_eval 0.5.11 lacks
    "official": ("runid", "num_q", "num_ret", "num_rel", "num_rel_ret", "map", "gm_map", "Rprec", "bpref",
                 "recip_rank", "iprec_at_recall", "P"),
    "set": ("runid", "num_q", "num_ret", "num_rel", "num_rel_ret", "utility", "set_P", "set_recall",
            "set_relative_P", "set_map", "set_F"),
    "all_trec": tuple(CATALOGUE),
}
MISSING_FROM_PYTREC_EVAL = ("rbp", "rbp_resid", "unj")  # in trec_eval 10's all_trec, not in pytrec_eval

_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_RR_CUT = "recip_rank_"  # internal key of recip_rank_<N>, repbench's MRR@N


@dataclass(frozen=True)
class Measure:
    """One printed measure: its trec_eval name, the base it belongs to, and how pytrec_eval computes it.

    `request` is the pytrec_eval measure string of its base (None for measures pytrec_eval does not
    compute: runid, num_q, relstring); `key` is the name pytrec_eval returns it under; `cutoff` is the
    N of ``recip_rank_<N>``.
    """

    name: str
    base: str
    request: str | None
    key: str
    cutoff: int | None = None

    @property
    def order(self) -> int:
        """Position in trec_eval's print order (measures.c)."""
        return ORDER[self.base]


def _bad(spec: str, why: str) -> RepbenchError:
    return RepbenchError(f"bad measure {spec!r}: {why}")


def _numbers(spec: str, params: str) -> list[float]:
    pieces = params.split(",")
    for p in pieces:
        if not _NUMBER.match(p.strip()):
            raise _bad(spec, f"expected comma-separated numbers after the measure name, got {p!r}")
    return [float(p) for p in pieces]


def _long_cutoffs(spec: str, params: str) -> list[int]:
    # trec_eval reads each cutoff with atol: "23.4" is 23.
    values = [int(v) for v in _numbers(spec, params)]
    if min(values) <= 0:
        raise _bad(spec, "cutoffs must be positive integers")
    if max(values) > 2**31 - 1:  # trec_eval holds a cutoff in a C long, pytrec_eval in a C int
        raise _bad(spec, "cutoffs must be at most 2147483647")
    return values


def _check_params(spec: str, base: str, kind: str, params: str) -> None:
    if kind == DOUBLE_PARAMS:
        values = _numbers(spec, params)
        if base == "utility" and len(values) != 4:
            raise _bad(spec, "utility takes 4 coefficients: rel_ret, nonrel_ret, rel_notret, nonrel_notret")
        if base in ("relstring", "set_F") and len(values) != 1:
            raise _bad(spec, f"{base} takes one number")
        if base == "relstring" and (values[0] != int(values[0]) or values[0] < 0):
            raise _bad(spec, "relstring takes the number of documents, a non-negative integer")
    elif kind == PAIRS:
        for pair in params.split(","):
            name, eq, value = pair.partition("=")
            if not eq or not name.strip() or not _NUMBER.match(value.strip()):
                raise _bad(spec, f"expected name=number pairs such as 1=3,2=9 after {base}., got {pair!r}")


def _split(spec: str) -> tuple[str, str | None]:
    """(base, parameters or None); recip_rank_<N> comes back as the internal base `_RR_CUT`."""
    if spec in CATALOGUE:
        return spec, None
    base, dot, params = spec.partition(".")
    if dot and base in CATALOGUE:  # else an output name holding a '.' (iprec_at_recall_0.10)
        if CATALOGUE[base][0] == NONE:
            raise _bad(spec, f"{base} takes no parameters")
        if not params:
            raise _bad(spec, "nothing after the '.'")
        return base, params
    # An output name: the longest base that takes parameters wins ("map_cut_10" is map_cut + 10).
    for base in sorted((b for b in CATALOGUE if CATALOGUE[b][0] != NONE), key=len, reverse=True):
        rest = spec[len(base) + 1:]
        # Output-name parameters start with a number: "ndcg_cut10" is a typo, not ndcg with "cut10".
        if spec.startswith(base + "_") and rest and (rest[0].isdigit() or rest[0] in ".-+"):
            return base, rest
    if spec.startswith(_RR_CUT) and len(spec) > len(_RR_CUT):
        return _RR_CUT, spec[len(_RR_CUT):]
    raise _unknown(spec)


# ir_measures' names -> (trec_eval spec without a cutoff, trec_eval spec with cutoff N as {n}).
IR_MEASURES: dict[str, tuple[str | None, str | None]] = {
    "ndcg": ("ndcg", "ndcg_cut.{n}"), "p": (None, "P.{n}"), "r": (None, "recall.{n}"),
    "rr": ("recip_rank", "recip_rank_{n}"), "ap": ("map", "map_cut.{n}"), "success": (None, "success.{n}"),
    "rprec": ("Rprec", None), "bpref": ("bpref", None), "numret": ("num_ret", None), "numrel": ("num_rel", None),
    "numrelret": ("num_rel_ret", None), "numq": ("num_q", None), "infap": ("infAP", None),
    # ranx's spellings of the same
    "mrr": ("recip_rank", "recip_rank_{n}"), "map": ("map", "map_cut.{n}"), "precision": (None, "P.{n}"),
    "recall": ("recall", "recall.{n}"),
}
_IR_NAME = re.compile(r"^(?P<name>[A-Za-z]+)(?P<rel>\([^)]*\))?(?:@(?P<cut>[^@]*))?$")
EXAMPLE_NAMES = ("ndcg_cut_10", "ndcg_cut.10", "P_10", "P.10", "recall_100", "recall_1000", "recip_rank_10",
                 "map_cut_10", "success_10", "nDCG@10", "P@10", "R@100", "RR@10", "AP")


def from_ir_measures(spec: str) -> str:
    """The trec_eval spec of an ir_measures name (`nDCG@10` -> `ndcg_cut.10`); other specs unchanged."""
    if spec in CATALOGUE or spec in NICKNAMES:
        return spec
    m = _IR_NAME.match(spec)
    if not m or m.group("name").lower() not in IR_MEASURES or ("@" not in spec and not m.group("rel")
                                                                and spec.lower() == spec and spec != "ap"):
        return spec
    plain, cut = IR_MEASURES[m.group("name").lower()]
    if m.group("rel"):
        raise _bad(spec, "a per-measure relevance level is not supported; use -l N (--relevance-level) for all")
    n = m.group("cut")
    if n is None:
        if plain is None:
            raise _bad(spec, f"{m.group('name')} needs a cutoff, e.g. {m.group('name')}@10")
        return plain
    if cut is None:
        raise _bad(spec, f"{m.group('name')} takes no cutoff")
    if not n.isdigit() or int(n) < 1:
        raise _bad(spec, "the cutoff after @ must be a positive integer")
    return cut.format(n=int(n))


def _unknown(spec: str) -> RepbenchError:
    hint = " (a parametrised measure such as P.5,10 goes in one -m, one per flag)" if spec[:1].isdigit() else ""
    hint = hint or did_you_mean(spec, [*CATALOGUE, *NICKNAMES, *EXAMPLE_NAMES])
    return RepbenchError(
        f"unknown measure {spec!r}{hint}; use trec_eval names (map, P.5,10, ndcg_cut.10, ndcg_cut_10, "
        f"recall_1000, recip_rank, utility.2,-1,0,0, all_trec, ...), recip_rank_<N> for MRR@N, or ir_measures "
        "names (nDCG@10, P@5, R@100, RR@10, AP)"
    )


def resolve(specs: Iterable[str], text: bool = True) -> list[Measure]:
    """The measures `specs` ask for, each once, in the order given (nicknames expanded in place).

    A measure asked for with parameters replaces its defaults, as in trec_eval; cutoffs asked for several
    times (``P.5`` and ``P_10``) are merged, and two parameter sets of one measure (``ndcg.1=3`` and
    ``ndcg.1=5``) are both computed, where trec_eval keeps only the first. With
    `text=False`, nicknames leave out what is not a per-query number (runid, num_q, relstring), and asking
    for one of those is an error.
    """
    specs = list(specs)
    if not specs:
        raise RepbenchError("no measures requested")
    wanted: list[tuple[str, str | None]] = []  # (base, params) in request order
    for spec in specs:
        spec = from_ir_measures(spec.strip())
        if spec in NICKNAMES:
            wanted += [(b, None) for b in NICKNAMES[spec] if text or (b not in TEXT and b != "num_q")]
            continue
        base, params = _split(spec)
        if not text and (base in TEXT or base == "num_q"):
            raise RepbenchError(f"{spec!r} is not a per-query number; `repbench eval-run` prints it")
        wanted.append((base, params))

    cut: dict[str, list[float]] = {}  # explicit cutoffs per cut measure, merged over requests
    for base, params in wanted:
        if params is None:
            continue
        if base == _RR_CUT:
            cut.setdefault(base, []).extend(_long_cutoffs(base + params, params))
        elif CATALOGUE[base][0] == LONG_CUT:
            cut.setdefault(base, []).extend(_long_cutoffs(f"{base}.{params}", params))
        elif CATALOGUE[base][0] == DOUBLE_CUT:
            cut.setdefault(base, []).extend(_numbers(f"{base}.{params}", params))
        else:
            _check_params(f"{base}.{params}", base, CATALOGUE[base][0], params)

    # As in trec_eval, a parametrised request replaces the plain one (`-m all_trec -m relstring.20`).
    with_params = {base for base, params in wanted if params is not None}
    out: list[Measure] = []
    done: set[tuple[str, str | None]] = set()
    for base, params in wanted:
        kind = CATALOGUE[base][0] if base != _RR_CUT else LONG_CUT
        token = (base, None) if base in cut else (base, params)
        if token in done or (params is None and base in with_params and base not in cut):
            continue
        done.add(token)
        if base == _RR_CUT:
            out += [Measure(f"recip_rank_{c}", "recip_rank", "recip_rank", "recip_rank", cutoff=c)
                    for c in sorted(set(cut[base]))]
        elif kind in (LONG_CUT, DOUBLE_CUT):
            values = sorted(set(cut.get(base) or _numbers(base, CATALOGUE[base][1] or "")))
            if kind == LONG_CUT:
                values = [int(v) for v in values]
                names = [f"{base}_{int(v)}" for v in values]
            else:
                names = [f"{base}_{v:3.2f}" for v in values]
            request = f"{base}.{','.join(repr(v) for v in values)}"
            out += [Measure(n, base, request, n) for n in dict.fromkeys(names)]
        else:
            name = base if params is None else f"{base}_{params}"
            computed_here = base in TEXT or base == "num_q"
            request = None if computed_here else (base if params is None else f"{base}.{params}")
            out.append(Measure(name, base, request, base))
    return out


def base_of(name: str) -> str:
    """The measure an output name belongs to ("ndcg_cut_10" -> "ndcg_cut", "recip_rank_10" -> "recip_rank")."""
    base = _split(name)[0]
    return "recip_rank" if base == _RR_CUT else base


def names(specs: Sequence[str]) -> list[str]:
    """The output names `specs` resolve to, in request order."""
    return [m.name for m in resolve(specs)]
