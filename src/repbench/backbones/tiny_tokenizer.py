"""A small byte-level BPE tokenizer for the tiny controlled pair (docs/backbones.md §5.3).

With SmolLM2's 49k vocabulary, a 64-wide model spends more on its LM-head readout (needed for the
sparse vectors) than on its trunk, so K slots would cost far more than K extra positions and the tiny
pair would misrepresent how a 7B model scales with K. A 1,024-entry vocabulary keeps the head/trunk
ratio closer to the real backbones'. It is trained deterministically from text bundled here, cached
under the user cache dir, and encodes any UTF-8 text (byte-level alphabet).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from repbench.io import atomic_write_text

VOCAB_SIZE = 1024  # the model's vocabulary; the trained tokenizer uses the first ~920 ids (padded, as Qwen's)
VERSION = 1
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|mask|>"]  # ids 0..3
MASK_ID = 3
CHAT_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + "
    "'<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

_CORPUS = """
Information retrieval is the task of finding documents that satisfy an information need from within a large
collection. A query is a short statement of that need; a passage or document is relevant when it answers it.
Language models can be used directly as retrievers: the model reads the query or the passage inside a prompt
and the hidden states at a few representative positions become dense vectors, while the logits at the same
positions become sparse vectors of weighted words. An autoregressive model decodes one token after another,
keeping a cache of keys and values, so K representatives cost K sequential steps. A diffusion language model
reads K masked positions in one bidirectional forward pass. The retrieval system scores every document for a
query, ranks them, and the ranking is evaluated with measures such as nDCG at ten, mean reciprocal rank and
recall at one hundred or one thousand documents. Latency, memory and energy are measured on the same hardware.
The cat sat on the mat near the window while it rained all afternoon in the old town. Scientists reported
that the new treatment reduced the risk of disease in patients who took part in the clinical study, and
that further research will be needed to confirm the effect in larger groups of people across many countries.
Use one word to represent the query in a retrieval task. Make sure your word is in lowercase. The word is:
Use a few words to represent the passage in a retrieval task. Make sure your words are in lowercase.
You are an AI assistant that can understand human language. Query: Passage: The words are: query: passage:
0 1 2 3 4 5 6 7 8 9 10 100 1000 2024 . , ; : ! ? " ' ( ) [ ] - / % & +
"""


def _stopwords() -> str:
    from importlib import resources

    return resources.files("repbench.encoders").joinpath("stopwords_en.txt").read_text()


def _train() -> str:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE, special_tokens=SPECIALS, show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    text = (_CORPUS + "\n" + _stopwords()).splitlines()
    tok.train_from_iterator(text, trainer=trainer)
    return tok.to_str()


def _path() -> Path:
    from repbench.backbones.cache import cache_root

    return cache_root() / f"tiny-bpe-{VOCAB_SIZE}-v{VERSION}" / "tokenizer.json"


@cache
def _tokenizer_json() -> str:
    path = _path()
    if path.is_file():
        return path.read_text()
    text = _train()
    atomic_write_text(path, text)
    return text


def tiny_tokenizer() -> Any:
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer.from_str(_tokenizer_json())
    if backend.get_vocab_size() > VOCAB_SIZE or backend.token_to_id("<|mask|>") != MASK_ID:
        raise RuntimeError(f"tiny tokenizer at {_path()} is malformed (vocabulary {backend.get_vocab_size()}); "
                           "delete it to rebuild")
    tok = PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token="<|im_start|>", eos_token="<|im_end|>", unk_token="<|endoftext|>",
        pad_token="<|im_end|>", additional_special_tokens=["<|mask|>"],
    )
    tok.chat_template = CHAT_TEMPLATE
    return tok
