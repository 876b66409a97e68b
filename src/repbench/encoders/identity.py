"""What one encoding's numbers depend on, as one value with one digest.

A store's config.json and options_hash (`repbench encode`, the sweep's passage stores), the sweep's cache
file names and the settings a resumed sweep must share are all read from an `EncodingIdentity`, so a new
option or setting joins all three by being a field here or of EncodeOptions.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from repbench.encoders.digest import options_hash
from repbench.encoders.options import EncodeOptions

__all__ = ["EncodingIdentity", "identity_of"]

# Set per encoding (each side at each K, each input), not once per sweep; and the memory knobs (which rows
# share a forward pass), which one changes to resume a sweep that ran out of memory: in float32 they move only
# a vector's last bits. A resumed sweep must match every other field.
PER_ENCODING = ("k", "side", "rows", "store_layout", "batch_size")
# How precisely the vectors were computed and kept, as opposed to what the method computes: an `encode` run
# on a GPU in bfloat16 may serve a sweep on the CPU. (In bfloat16 they can flip a near-tied decoded token,
# as another batch does upstream; the sweep records which store it scored, so the numbers stay traceable.)
PRECISION = ("dtype", "device_type", "attn", "batch_size", "store_dtype", "store_layout")


@dataclass(frozen=True)
class EncodingIdentity:
    """The backbone as loaded, the encoder and every option, and (when known) the rows encoded.

    `store_dtype` is the precision the vectors are kept in (a float16 store scores differently);
    `store_layout` says which rows shared a forward pass (padding changes a float32 vector's last bits);
    `rows` is `digest.rows_hash` of the input, absent for a store, whose shards each record their own.
    """

    backbone: str
    encoder: str
    options: EncodeOptions
    dtype: str
    device_type: str
    attn: str | None = None
    store_dtype: str = "float32"
    store_layout: str | None = None
    rows: str | None = None

    def fields(self) -> dict[str, Any]:
        """The identity as one flat JSON-able mapping (a store's config.json holds it): every option,
        the prompt variant resolved so `None` and the variant it stands for at this K are one encoding."""
        from repbench.encoders.prompts import default_variant

        opts = asdict(self.options)
        opts["prompt_variant"] = self.options.prompt_variant or default_variant(self.options.k)
        own = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "options"}
        flat = {**opts, **own}
        return {k: v for k, v in flat.items() if not (k in ("store_layout", "rows") and v is None)}

    def digest(self) -> str:
        """sha256 of `fields()`: equal digests mean equal settings, so the same numbers."""
        return options_hash(self.fields())

    def sweep_fields(self) -> dict[str, Any]:
        """The fields a resumed sweep must match (all but PER_ENCODING's)."""
        # The variant as given: None means "the default at each K", which differs between the sweep's Ks.
        flat = {**self.fields(), "prompt_variant": self.options.prompt_variant}
        return {k: v for k, v in flat.items() if k not in PER_ENCODING}

    def method_fields(self) -> dict[str, Any]:
        """What was computed (backbone, encoder, every method option, K, side, max length), without how
        precisely (PRECISION) or of which rows: what a store reused by another sweep must match."""
        return {k: v for k, v in self.fields().items() if k not in (*PRECISION, "rows")}


def identity_of(loaded: Any, encoder: str, options: EncodeOptions, name: str | None = None,
                **extra: Any) -> EncodingIdentity:
    """The identity of encoding with a loaded backbone (or an engine's BackboneInfo, or a test's stand-in:
    attributes it lacks read as float32 on the CPU). `name`: the backbone as the user named it (default
    the loaded spec's name)."""
    dtype = str(getattr(loaded, "dtype", None) or "float32").removeprefix("torch.")
    device = str(getattr(loaded, "device", "cpu")).split(":")[0]
    spec = getattr(loaded, "spec", None)
    return EncodingIdentity(backbone=name or str(getattr(spec, "name", loaded)), encoder=encoder, options=options,
                            dtype=dtype, device_type=device, attn=getattr(loaded, "attn", None), **extra)
