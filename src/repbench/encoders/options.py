"""How to encode: one options dataclass shared by every encoder, so call sites pass one value.

Standard library only, so the registry, the CLI and the report can read it without importing torch.
Which encoder reads which option is in `repbench.encoders.registry`.
"""

from __future__ import annotations

from dataclasses import Field, dataclass, field, fields, replace
from functools import cache
from importlib import resources
from typing import Any

from repbench.errors import RepbenchError

SIDES = ("query", "passage")
READOUTS = ("paper", "aligned")
CONFIDENCE = ("entropy", "maskgit_plus", "topk_margin")  # unmasking schedules of the parallel encoder
SPARSE_TOP_K = 128  # ids kept per slot before max-pooling (docs/method.md §3.7)
# Sequential decoding: "off" runs exactly K steps (the paper's fixed-N baseline); "upstream" is PromptReps'
# early exit (a row ends at the first token whose text holds a `"`, and that slot is dropped); "strict" also
# ends a row at a special token and keeps the slot that wrote the closing quote (repbench before issue 24).
EARLY_STOP = ("off", "upstream", "strict")


@cache
def prompt_variants() -> tuple[str, ...]:
    """Variants shipped for both sides ("one", "few", "three")."""
    names = [p.name for p in resources.files("repbench.encoders").joinpath("prompts").iterdir()]
    per_side = [{n.removeprefix(f"{side}_prompt_").removesuffix(".yaml") for n in names
                 if n.startswith(f"{side}_prompt_") and n.endswith(".yaml")} for side in SIDES]
    return tuple(sorted(set.intersection(*per_side)))


def _field(default: Any, help: str, group: str = "method", **cli: Any) -> Any:
    """A field with its command-line help: the CLI groups are generated from these (commands.encode_options),
    so a new option is one line here. `group` is "method" (the encoding method group) or "model"."""
    return field(default=default, metadata={"help": help, "group": group, "cli": cli})


@dataclass(frozen=True)
class EncodeOptions:
    """Everything that changes what an encoder computes, besides the backbone and the texts.

    k               representatives per text (1 for the single-pass encoders)
    side            "query" or "passage": picks the prompt (and lasttoken's "query: " head)
    batch_size      texts per forward pass (longest first, so batches pad little)
    max_length      tokens per model input, prompt and slots included; texts are cut to fit
    readout         parallel: "paper" (slot positions as published) or "aligned"
    denoise_steps   parallel: unmasking passes S (1 = one forward, docs/method.md §3.5)
    confidence      parallel: the schedule deciding which slots unmask first when S > 1
    early_stop      sequential: "off" (exactly K steps), "upstream" or "strict" (EARLY_STOP); True means
                    "upstream", False "off"
    adapt_prompt    sequential: adapt the prompt's wording to K as the diffusion path does (upstream's
                    zero-shot AR class never does; the parallel encoder always does)
    prompt_variant  prompted encoders: the prompt file variant (default: by K)
    truncate        prompted encoders: invalidate slots after the first stop token (docs/method.md §3.6)
    sparse_top_k    prompted encoders: vocabulary ids kept per slot for the sparse vector
    """

    k: int = 1
    side: str = "query"
    batch_size: int = _field(8, "texts encoded together (float32: padding changes only the last bits of the "
                                "vectors; bfloat16: it can change a text's decoded tokens, as upstream)", group="model")
    max_length: int = _field(512, "tokens per model input, prompt included; longer texts are cut to fit",
                             group="model")
    readout: str = _field("paper", "parallel: 'paper' slot positions or 'aligned' (one left on Dream)",
                          choices=READOUTS)
    denoise_steps: int = _field(1, "parallel: unmasking passes S")
    confidence: str = _field("entropy", "parallel, S>1: which slots unmask first", choices=CONFIDENCE)
    early_stop: str = _field(
        "off", "sequential: stop decoding once every row has closed its answer. 'upstream' (the value of a bare "
        "--early-stop): PromptReps' early exit, a row ends at its first token holding a \" and that slot is "
        "dropped; 'strict': a special token ends a row too, and the closing slot is kept; 'off' (default): "
        "exactly K steps, the paper's fixed-N baseline",
        choices=EARLY_STOP, nargs="?", const="upstream", metavar="MODE")
    adapt_prompt: bool = _field(False, "sequential: word the prompt for K ('Use four words ...') as the parallel "
                                "path does; off by default, as upstream's zero-shot AR class (only "
                                "--prompt-variant one|three differ)")
    prompt_variant: str | None = _field(None, "prompted encoders: prompt file variant (default: 'one' at K=1, "
                                        "'few' at K>1)", choices=prompt_variants)
    truncate: bool = _field(True, "prompted encoders: drop the slots after a stop token (docs/method.md §3.6)")
    sparse_top_k: int = _field(SPARSE_TOP_K, "prompted encoders: vocabulary ids kept per slot")

    def __post_init__(self) -> None:
        # The flag was a bool before issue 24; True now names upstream's early exit.
        if isinstance(self.early_stop, bool):
            object.__setattr__(self, "early_stop", "upstream" if self.early_stop else "off")

    @classmethod
    def build(cls, options: EncodeOptions | None = None, **overrides: Any) -> EncodeOptions:
        """`options` (or the defaults) with keyword overrides; an unknown keyword is an error, not ignored."""
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(overrides) - set(known))
        if unknown:
            raise RepbenchError(f"unknown encode option(s) {', '.join(unknown)}; known: {', '.join(known)}")
        return replace(options or cls(), **overrides)

    def non_default(self) -> list[str]:
        """Names of the options set to something other than their default."""
        default = type(self)()
        return [f.name for f in fields(self) if getattr(self, f.name) != getattr(default, f.name)]

    def validate(self) -> None:
        """Checks that do not depend on the encoder (K's range does: see registry.check)."""
        if self.side not in SIDES:
            raise RepbenchError(f"side must be 'query' or 'passage', got {self.side!r}")
        if self.readout not in READOUTS:
            raise RepbenchError(f"readout must be one of {READOUTS}, got {self.readout!r}")
        if self.denoise_steps < 1:
            raise RepbenchError(f"denoise_steps must be >= 1, got {self.denoise_steps}")
        if self.early_stop not in EARLY_STOP:
            raise RepbenchError(f"early_stop must be one of {EARLY_STOP}, got {self.early_stop!r}")
        if self.confidence not in CONFIDENCE:
            raise RepbenchError(f"confidence must be one of {CONFIDENCE}, got {self.confidence!r}")
        if self.prompt_variant is not None and self.prompt_variant not in prompt_variants():
            raise RepbenchError(f"prompt_variant must be one of {', '.join(prompt_variants())} "
                                f"(files encoders/prompts/<side>_prompt_<variant>.yaml), got {self.prompt_variant!r}")
        for name in ("batch_size", "max_length", "sparse_top_k"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise RepbenchError(f"{name} must be a positive integer, got {value!r}")


def batch_rule(dtype: str) -> str:
    """Whether a row's output can depend on the other rows of its batch, at this dtype (issue 24; measured
    against upstream: in bfloat16 left padding changed decoded tokens in 3-7 of 20 rows at K=16, and
    upstream's own code behaves the same)."""
    name = str(dtype).removeprefix("torch.")
    if name in ("float32", "fp32", "float64"):
        return ("batch-independent: decoded tokens and valid slots never depend on the batch; vectors equal "
                "to ~1e-5 (left padding changes only the summation order)")
    return (f"{name}: left padding can change a row's decoded tokens, hence its valid slots and vectors, "
            "against batch 1 (upstream behaves the same); use float32 for batch-independent output")


def option_names() -> tuple[str, ...]:
    return tuple(f.name for f in fields(EncodeOptions))


def cli_fields(cls: type = EncodeOptions, group: str = "method") -> tuple[Field, ...]:
    """The fields of an options class that a command-line group offers ("method" or "model")."""
    return tuple(f for f in fields(cls) if f.metadata.get("group") == group)


def method_names(cls: type = EncodeOptions) -> tuple[str, ...]:
    """The method options: every field the sweep sets once for both sides (K and side vary per encoding;
    batch size and max length are model options)."""
    return tuple(f.name for f in cli_fields(cls, "method"))
