"""The work one encoder call must do: matmul FLOPs and bytes moved, per forward pass, and its roofline floor.

Pure arithmetic on a backbone's shape (no torch). A call is a list of forward passes, each described by
how many rows and new tokens it runs, how many cached tokens it attends to, how many columns of the last
layer it computes and how many rows go through the LM head, exactly as `repbench.backbones.forward`
runs them:

- parallel: one pass over prompt + text + K masks + tail (S passes with S denoising steps); the last
  layer computes keys and values at every column, its queries, output projection and MLP at the K read
  columns; the head at the K read rows.
- sequential: a prefill over prompt + text (last layer at the last column, head at one row, keys and
  values written to the cache), then K-1 decode steps of one token each that read the whole cache.
- meanpool: `model.model` over every column (no head); lasttoken: the last column only (no head).

FLOPs count matrix products only, 2 per multiply-add (what `torch.utils.flop_counter` counts); attention
is counted dense (queries x every key, masked or not), as sdpa's math path and eager attention run it.
Norms, rotary, softmax and activations are left out (well under 1% on the paper's backbones).
A single head row is computed as two (`forward.head_logits`: MKL's one-row path is slower), so it is
counted as two.

Bytes are a lower bound on memory traffic: every weight matrix the pass uses is read once (the input
embedding only at its looked-up rows, unless tied to the head, which reads it whole); the KV cache is
read once per pass and each new key/value written once; activations are each layer's input and output
rows, keys and values of a pass without a cache written and read once, the embedding rows gathered and
the logits written. The floor of a pass is max(FLOPs / peak FLOP/s, bytes / peak bandwidth); the floor
of a call is the sum over its passes, which run one after another. See README "Roofline".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2, "float64": 8}
SINGLE_PASS = ("meanpool", "lasttoken")
ENCODER_NAMES = ("parallel", "sequential", *SINGLE_PASS)


@dataclass(frozen=True)
class Architecture:
    """The shape of a Llama/Qwen2-style decoder: everything the FLOP and byte counts need."""

    layers: int
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    ffn: int
    vocab: int
    tied_head: bool
    qkv_bias: bool = False
    o_bias: bool = False
    mlp_bias: bool = False

    @classmethod
    def from_config(cls, cfg: Any, architecture: str | None = None) -> Architecture:
        """From a transformers config object or its kwargs dict; `architecture` ("qwen2" | "llama")
        when the config does not name its `model_type`. Qwen2 has q/k/v biases; Llama has
        `attention_bias` (q/k/v/o) and `mlp_bias`."""
        get = cfg.get if isinstance(cfg, Mapping) else (lambda key, default=None: getattr(cfg, key, default))
        kind = architecture or get("model_type")
        if kind not in ("qwen2", "llama"):
            raise ValueError(f"roofline knows the qwen2 and llama decoders, not {kind!r}")
        hidden, heads = int(get("hidden_size")), int(get("num_attention_heads"))
        attn_bias = bool(get("attention_bias", False))
        return cls(
            layers=int(get("num_hidden_layers")), hidden=hidden, heads=heads,
            kv_heads=int(get("num_key_value_heads") or heads),
            head_dim=int(get("head_dim") or hidden // heads), ffn=int(get("intermediate_size")),
            vocab=int(get("vocab_size")), tied_head=bool(get("tie_word_embeddings", False)),
            qkv_bias=kind == "qwen2" or attn_bias, o_bias=kind == "llama" and attn_bias,
            mlp_bias=kind == "llama" and bool(get("mlp_bias", False)),
        )

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Architecture:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def q_dim(self) -> int:
        return self.heads * self.head_dim

    @property
    def kv_dim(self) -> int:
        return self.kv_heads * self.head_dim

    @property
    def layer_params(self) -> int:
        """Parameters of one decoder layer: q/k/v/o projections, gate/up/down, two norms, biases."""
        h, q, kv, f = self.hidden, self.q_dim, self.kv_dim, self.ffn
        n = h * q + 2 * h * kv + q * h + 3 * h * f + 2 * h
        n += (q + 2 * kv) * self.qkv_bias + h * self.o_bias + (2 * f + h) * self.mlp_bias
        return n

    @property
    def embedding_params(self) -> int:
        return self.vocab * self.hidden

    @property
    def params(self) -> int:
        """All parameters: embedding, layers, final norm and (untied) head, as `model.parameters()` counts."""
        return self.embedding_params * (1 if self.tied_head else 2) + self.layers * self.layer_params + self.hidden

    def weight_params_read(self, with_head: bool) -> int:
        """Parameters a pass reads in full: every layer, the final norm and, when it runs, the head
        (the embedding table itself when tied). The untied input embedding is read only at its rows."""
        return self.layers * self.layer_params + self.hidden + (self.embedding_params if with_head else 0)


@dataclass(frozen=True)
class Forward:
    """One forward pass: `batch` rows of `new` tokens attending to `past` cached ones; the last layer's
    queries/MLP at `read` columns per row (None: all); `head_rows` rows through the LM head in total."""

    batch: int
    new: int
    past: int = 0
    read: int | None = None
    head_rows: int = 0
    cached: bool = False  # keys and values go to a KV cache (they are counted as cache traffic)


@dataclass(frozen=True)
class Work:
    flops: float
    weight_bytes: float
    kv_bytes: float
    activation_bytes: float
    attention_flops: float = 0.0  # the part of `flops` in QK^T and PV (torch's CPU sdpa is not counted by FlopCounterMode)

    @property
    def bytes(self) -> float:
        return self.weight_bytes + self.kv_bytes + self.activation_bytes

    def __add__(self, other: Work) -> Work:
        return Work(self.flops + other.flops, self.weight_bytes + other.weight_bytes,
                    self.kv_bytes + other.kv_bytes, self.activation_bytes + other.activation_bytes,
                    self.attention_flops + other.attention_flops)


def head_rows(rows: int) -> int:
    """Rows the head's matmul runs for `rows` read rows (forward.head_logits computes one row as two)."""
    return 2 if rows == 1 else rows


def forward_work(arch: Architecture, f: Forward, dtype_bytes: int) -> Work:
    """FLOPs and bytes of one pass (module docstring for what is counted)."""
    b, n, h = f.batch, f.new, arch.hidden
    r = n if f.read is None else f.read
    keys = f.past + n
    q_o_mlp = arch.hidden * arch.q_dim * 2 + 3 * h * arch.ffn  # multiply-adds per row: q, o, gate/up/down
    kv_proj = 2 * h * arch.kv_dim
    attend = 2 * arch.heads * arch.head_dim * keys  # QK^T and PV per query row
    macs = (arch.layers - 1) * b * n * (q_o_mlp + kv_proj + attend)
    macs += b * n * kv_proj + b * r * (q_o_mlp + attend)  # the last layer, at the read columns
    macs += f.head_rows * h * arch.vocab
    weights = arch.weight_params_read(f.head_rows > 0) * dtype_bytes
    kv_new = 2 * arch.layers * b * n * arch.kv_dim  # elements of the new keys and values
    kv = (2 * arch.layers * b * f.past * arch.kv_dim + (kv_new if f.cached else 0)) * dtype_bytes
    act = b * n * h  # embedding rows gathered
    act += ((arch.layers - 1) * 2 * b * n + b * n + b * r) * h  # each layer's input and output rows
    act += 0 if f.cached else 2 * kv_new  # keys and values written and read once inside the pass
    act += f.head_rows * arch.vocab if f.head_rows else 0  # logits written
    attention = ((arch.layers - 1) * b * n + b * r) * attend
    return Work(flops=2.0 * macs, weight_bytes=float(weights), kv_bytes=float(kv),
                activation_bytes=float(act * dtype_bytes), attention_flops=2.0 * attention)


def encoder_forwards(encoder: str, seq_tokens: int, k: int, batch: int = 1, denoise_steps: int = 1) -> list[Forward]:
    """The passes one encoder call runs on a batch of `batch` rows of `seq_tokens` model tokens each
    (prompt + text [+ K masks + tail]: the bench's `model_input_tokens`)."""
    if seq_tokens < 1 or k < 1 or batch < 1 or denoise_steps < 1:
        raise ValueError(f"need positive sizes, got seq_tokens={seq_tokens}, k={k}, batch={batch}, "
                         f"denoise_steps={denoise_steps}")
    if encoder == "parallel":
        one = Forward(batch, seq_tokens, read=k, head_rows=head_rows(batch * k))
        return [one] * denoise_steps
    if encoder == "sequential":
        out = [Forward(batch, seq_tokens, read=1, head_rows=head_rows(batch), cached=True)]
        out += [Forward(batch, 1, past=seq_tokens + j, read=1, head_rows=head_rows(batch), cached=True)
                for j in range(k - 1)]
        return out
    if encoder == "meanpool":
        return [Forward(batch, seq_tokens)]
    if encoder == "lasttoken":
        return [Forward(batch, seq_tokens, read=1)]
    raise ValueError(f"unknown encoder {encoder!r}; roofline knows {', '.join(ENCODER_NAMES)}")


@dataclass(frozen=True)
class Peaks:
    """A device's peak matmul FLOP/s (for one dtype) and memory read bandwidth (bytes/s), and whence."""

    flops: float
    bandwidth: float
    source: str

    def __post_init__(self) -> None:
        if not (self.flops > 0 and self.bandwidth > 0):
            raise ValueError(f"peaks must be positive, got {self.flops} FLOP/s and {self.bandwidth} B/s")


@dataclass(frozen=True)
class Roofline:
    """One call's work, its floor on some peaks, and the measured time's utilisation of them."""

    work: Work
    forwards: int
    floor_s: float
    compute_s: float  # sum over passes of FLOPs / peak (the floor if nothing were memory-bound)
    memory_s: float   # sum over passes of bytes / bandwidth
    bound: str        # "memory" or "compute": the side that sets the larger share of the floor

    def utilisation(self, seconds: float, peaks: Peaks) -> dict[str, float]:
        """MBU (bytes / (t x bandwidth)), MFU (FLOPs / (t x peak)) and floor / t of a measured time."""
        if not seconds > 0:
            raise ValueError(f"a measured time must be positive, got {seconds}")
        return {"mbu": self.work.bytes / (seconds * peaks.bandwidth), "mfu": self.work.flops / (seconds * peaks.flops),
                "floor_over_measured": self.floor_s / seconds}


def roofline(arch: Architecture, forwards: list[Forward], dtype: str, peaks: Peaks) -> Roofline:
    size = dtype_size(dtype)
    total = Work(0.0, 0.0, 0.0, 0.0)
    floor = compute = memory = 0.0
    for f in forwards:
        w = forward_work(arch, f, size)
        total = total + w
        c, m = w.flops / peaks.flops, w.bytes / peaks.bandwidth
        compute, memory, floor = compute + c, memory + m, floor + max(c, m)
    bound = "memory" if memory >= compute else "compute"
    return Roofline(total, len(forwards), floor, compute, memory, bound)


def call_work(arch: Architecture, encoder: str, seq_tokens: int, k: int, batch: int, dtype: str,
              denoise_steps: int = 1) -> Work:
    size = dtype_size(dtype)
    total = Work(0.0, 0.0, 0.0, 0.0)
    for f in encoder_forwards(encoder, seq_tokens, k, batch, denoise_steps):
        total = total + forward_work(arch, f, size)
    return total


def ridge_tokens(arch: Architecture, dtype: str, peaks: Peaks, batch: int = 1) -> int:
    """Model tokens per row above which a one-pass encoder call (parallel, K=1) is compute-bound on `peaks`."""
    def compute_bound(n: int) -> bool:
        r = roofline(arch, encoder_forwards("parallel", n, 1, batch), dtype, peaks)
        return r.compute_s > r.memory_s

    lo, hi = 1, 1
    while not compute_bound(hi):
        lo, hi = hi, hi * 2
        if hi > 1 << 24:
            raise ValueError("no crossover below 16M tokens: check the peaks")
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if compute_bound(mid) else (mid, hi)
    return hi


def dtype_size(dtype: str) -> int:
    name = str(dtype).removeprefix("torch.")
    if name not in DTYPE_BYTES:
        raise ValueError(f"unknown dtype {dtype!r}; roofline knows {', '.join(DTYPE_BYTES)}")
    return DTYPE_BYTES[name]
