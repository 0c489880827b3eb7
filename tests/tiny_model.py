"""A tiny Llama with random weights and a word-level tokenizer, built offline for engine tests.

Needs the ``transformers`` extra (torch, transformers). Random weights make
gibberish, so tests assert on shapes, never on content. The rows of the output
layer for special tokens are zeroed: their logit is 0 while the best of the
others is positive, so greedy decoding (temperature 0) never ends early or
emits only tokens that are skipped when decoding.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

HIDDEN_SIZE = 64
CONTEXT = 256
SPECIAL = ["<unk>", "<pad>", "<s>", "</s>", "<|system|>", "<|user|>", "<|assistant|>"]
SENTENCES = [
    "the sky is blue and the sea is green .",
    "say hello in three words , please !",
    "count from one to five : one two three four five .",
    "a small model writes many words , one after another .",
    "hi hello bye yes no maybe why how what who",
]
CHAT_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|>{{ message['content'] }}</s>"
    "{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def require_transformers() -> None:
    """Fail, never skip quietly, when the transformers extra is missing.

    ``scripts/test`` installs it (``scripts/setup --dev``). Set
    ``LLMOS_TEST_SKIP_TRANSFORMERS=1`` to skip these tests on purpose.
    """
    absent = [m for m in ("torch", "transformers") if importlib.util.find_spec(m) is None]
    if not absent:
        return
    message = (
        f"the transformers extra is not installed ({', '.join(absent)} missing): run "
        "scripts/setup --dev, or set LLMOS_TEST_SKIP_TRANSFORMERS=1 to skip these tests"
    )
    if os.environ.get("LLMOS_TEST_SKIP_TRANSFORMERS") == "1":
        pytest.skip(message)
    pytest.fail(message)


def build_tiny_llama(
    path: Path,
    *,
    hidden_size: int = HIDDEN_SIZE,
    intermediate_size: int = 128,
    layers: int = 2,
    heads: int = 4,
    kv_heads: int = 2,
) -> Path:
    """Save the model (safetensors), tokenizer and chat template into ``path``.

    The keywords give a bigger shape (scripts/gpu-check-serving.py builds one
    the size of SmolLM2-135M's layers); the tokenizer stays the same.
    """
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    words = Tokenizer(models.WordLevel(unk_token="<unk>"))
    words.pre_tokenizer = pre_tokenizers.Whitespace()
    words.train_from_iterator(SENTENCES, trainers.WordLevelTrainer(special_tokens=SPECIAL))
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=words,
        unk_token="<unk>",
        pad_token="<pad>",
        bos_token="<s>",
        eos_token="</s>",
        additional_special_tokens=SPECIAL[4:],
        model_max_length=CONTEXT,
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(path)

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=words.get_vocab_size(),
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        max_position_embeddings=CONTEXT,
        bos_token_id=words.token_to_id("<s>"),
        eos_token_id=words.token_to_id("</s>"),
        pad_token_id=words.token_to_id("<pad>"),
        tie_word_embeddings=False,
    )
    model = LlamaForCausalLM(config)
    with torch.no_grad():
        for token in SPECIAL:
            model.lm_head.weight[words.token_to_id(token)] = 0.0
    model.save_pretrained(path)
    return path
