"""A Llama GGUF with random weights and a byte-level vocabulary, written offline for llama.cpp.

Needs the ``gguf`` package (llama.cpp's own GGUF writer, in the dev group) and
numpy. The vocabulary is SentencePiece-style ("llama"): the three specials, the
256 byte tokens (byte fallback, so any text tokenizes) and a few hundred
printable pieces, so the file is small and loads in any llama.cpp build. Random
weights make gibberish: use it where what counts is that llama.cpp loads and
runs a model of a given shape (scripts/gpu-check-serving.py builds one in
SmolLM2-135M's shape on a GPU machine that cannot carry the bundled GGUF).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

SPECIALS = ("<unk>", "<s>", "</s>")
# token_type values of llama.cpp's vocabulary: normal, unknown, control, byte.
NORMAL, UNKNOWN, CONTROL, BYTE = 1, 2, 3, 6
CHAT_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|>\n{{ message['content'] }}</s>\n"
    "{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


def vocabulary() -> tuple[list[str], list[float], list[int]]:
    """Tokens, scores and token types: specials, bytes, then printable ASCII words."""
    tokens = list(SPECIALS)
    types = [UNKNOWN, CONTROL, CONTROL]
    tokens += [f"<0x{b:02X}>" for b in range(256)]
    types += [BYTE] * 256
    pieces = [chr(c) for c in range(33, 127)] + ["▁" + chr(c) for c in range(97, 123)]
    pieces += ["▁the", "▁is", "▁and", "▁one", "▁two", "▁three", "▁hello", "▁hi"]
    tokens += pieces
    types += [NORMAL] * len(pieces)
    # Longer pieces score higher, so the tokenizer prefers them to bytes.
    scores = [0.0] * (len(SPECIALS) + 256) + [-100.0 + len(p) for p in pieces]
    return tokens, scores, types


def build_tiny_gguf(
    path: Path,
    *,
    hidden_size: int = 64,
    intermediate_size: int = 128,
    layers: int = 2,
    heads: int = 4,
    kv_heads: int = 2,
    context: int = 512,
    seed: int = 0,
) -> Path:
    """Write ``path`` (float16 weights) and return it."""
    import gguf
    import numpy as np

    tokens, scores, types = vocabulary()
    head_dim = hidden_size // heads
    rng = np.random.default_rng(seed)

    def weight(*shape: int) -> Any:
        # Rows are outputs, as in PyTorch: gguf writes the dimensions reversed, as ggml wants.
        return (rng.standard_normal(shape, dtype=np.float32) * 0.02).astype(np.float16)

    def norm() -> Any:
        return np.ones(hidden_size, dtype=np.float32)

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("llmos-tiny-llama")
    writer.add_context_length(context)
    writer.add_embedding_length(hidden_size)
    writer.add_block_count(layers)
    writer.add_feed_forward_length(intermediate_size)
    writer.add_head_count(heads)
    writer.add_head_count_kv(kv_heads)
    writer.add_rope_dimension_count(head_dim)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_unk_token_id(0)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_chat_template(CHAT_TEMPLATE)

    writer.add_tensor("token_embd.weight", weight(len(tokens), hidden_size))
    for i in range(layers):
        block = f"blk.{i}"
        writer.add_tensor(f"{block}.attn_norm.weight", norm())
        writer.add_tensor(f"{block}.attn_q.weight", weight(hidden_size, hidden_size))
        writer.add_tensor(f"{block}.attn_k.weight", weight(kv_heads * head_dim, hidden_size))
        writer.add_tensor(f"{block}.attn_v.weight", weight(kv_heads * head_dim, hidden_size))
        writer.add_tensor(f"{block}.attn_output.weight", weight(hidden_size, hidden_size))
        writer.add_tensor(f"{block}.ffn_norm.weight", norm())
        writer.add_tensor(f"{block}.ffn_gate.weight", weight(intermediate_size, hidden_size))
        writer.add_tensor(f"{block}.ffn_up.weight", weight(intermediate_size, hidden_size))
        writer.add_tensor(f"{block}.ffn_down.weight", weight(hidden_size, intermediate_size))
    writer.add_tensor("output_norm.weight", norm())
    writer.add_tensor("output.weight", weight(len(tokens), hidden_size))

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
