"""The loaded LLM: prompts to token ids, one generation on a thread, embeddings.

Used by ``app.py`` and ``__main__.py``. The only module of the server that
touches torch and transformers, and only inside functions, so the package
imports without them. The caller serializes the calls that run the model (one
asyncio lock in ``app.py``); a generation also holds :attr:`LoadedModel.busy`
on its own thread, so two never overlap even when a client that hung up
stopped waiting for its own.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

DTYPES = ("auto", "float32", "float16", "bfloat16")
# When neither the config nor the tokenizer says how long a sequence may be.
DEFAULT_CONTEXT = 2048


class BadInput(ValueError):
    """A request this model cannot serve (too long, no chat template, …): a 400."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


@dataclass(frozen=True)
class Settings:
    """How one generation samples. None: the model's own generation_config decides."""

    max_new_tokens: int
    temperature: float | None = None
    top_p: float | None = None
    seed: int | None = None


class LoadedModel:
    """A causal LM and its tokenizer, on the GPUs (``device_map="auto"``) or the CPU."""

    def __init__(self, model: Any, tokenizer: Any) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.busy = threading.Lock()
        config = model.config.get_text_config()
        self.hidden_size = int(config.hidden_size)
        self.context = _context_length(config, tokenizer)
        eos = model.generation_config.eos_token_id
        self.eos_ids = {int(i) for i in (eos if isinstance(eos, list) else [eos]) if i is not None}
        pad = tokenizer.pad_token_id
        self.pad_id = int(pad) if pad is not None else min(self.eos_ids, default=0)

    @classmethod
    def load(
        cls,
        path: str,
        *,
        dtype: str = "auto",
        gpu_memory_fraction: float | None = None,
        trust_remote_code: bool = False,
    ) -> LoadedModel:
        """Load from a local directory. ``dtype`` auto: the checkpoint's on CUDA, float32 on CPU."""
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
        options = load_options(
            cuda=torch.cuda.is_available(), dtype=dtype, gpu_memory_fraction=gpu_memory_fraction
        )
        options["trust_remote_code"] = trust_remote_code
        model = AutoModelForCausalLM.from_pretrained(path, **options)
        model.eval()
        log.info("loaded %s (%s) on %s", path, model.dtype, placement(model))
        return cls(model, tokenizer)

    @property
    def device(self) -> Any:
        return self.model.device

    def chat_ids(self, messages: list[dict[str, str]]) -> list[int]:
        if not getattr(self.tokenizer, "chat_template", None):
            raise BadInput(
                "this model has no chat template: use /v1/completions, or a chat model", "messages"
            )
        try:
            text = self.tokenizer.apply_chat_template(
                messages, tokenize=False, add_generation_prompt=True
            )
        except Exception as exc:  # jinja2 errors, e.g. "roles must alternate"
            raise BadInput(
                f"the model's chat template refused the messages: {exc}", "messages"
            ) from exc
        # The template writes the special tokens (BOS …) itself.
        return self.text_ids(str(text), special=False)

    def text_ids(self, text: str, *, special: bool = True) -> list[int]:
        return [int(i) for i in self.tokenizer(text, add_special_tokens=special)["input_ids"]]

    def check_ids(self, ids: list[int], param: str) -> list[int]:
        vocabulary = len(self.tokenizer)
        if not ids:
            raise BadInput(f"{param} is empty: give at least one token", param)
        if any(i < 0 or i >= vocabulary for i in ids):
            raise BadInput(f"{param}: token ids must be between 0 and {vocabulary - 1}", param)
        if len(ids) > self.context:
            raise BadInput(
                f"{param} has {len(ids)} tokens, and this model's context is {self.context}: "
                "shorten it",
                param,
            )
        return ids

    def room(self, prompt_tokens: int, wanted: int | None, param: str) -> int:
        """How many tokens may be generated after a prompt: ``wanted``, or all that fit."""
        room = self.context - prompt_tokens
        if room <= 0 or (wanted is not None and wanted > room):
            raise BadInput(
                f"this model's context is {self.context} tokens, and the prompt has "
                f"{prompt_tokens}{f' plus {wanted} to generate' if wanted else ''}: "
                "shorten the prompt or lower max_tokens",
                param,
            )
        return wanted or room

    def embed(self, inputs: list[list[int]]) -> list[list[float]]:
        """Mean of the last hidden state over each input's tokens, L2-normalized."""
        import torch

        base = getattr(self.model, "base_model", self.model)
        vectors = []
        with self.busy, torch.inference_mode():
            for ids in inputs:
                tensor = torch.tensor([ids], device=self.device)
                # The base model skips the LM head (a vocabulary-sized matrix per token).
                out = base(input_ids=tensor, output_hidden_states=base is self.model)
                hidden = getattr(out, "last_hidden_state", None)
                if hidden is None:
                    hidden = out.hidden_states[-1]
                vector = torch.nn.functional.normalize(hidden[0].float().mean(dim=0), dim=0)
                vectors.append([float(x) for x in vector.cpu().tolist()])
        return vectors

    def generate_kwargs(self, settings: Settings) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "max_new_tokens": settings.max_new_tokens,
            "pad_token_id": self.pad_id,
        }
        if settings.temperature == 0:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        elif settings.temperature is not None:
            kwargs.update(do_sample=True, temperature=settings.temperature)
        if settings.top_p is not None and settings.temperature != 0:
            kwargs.update(do_sample=True, top_p=settings.top_p)
        return kwargs


class Generation:
    """One ``generate()`` on a thread of its own; its text arrives via a TextIteratorStreamer."""

    def __init__(self, loaded: LoadedModel, ids: list[int], settings: Settings) -> None:
        from transformers import TextIteratorStreamer

        self.prompt_tokens = len(ids)
        self.completion_tokens = 0
        self.finish_reason = "stop"
        self.error: BaseException | None = None
        self.cancelled = threading.Event()
        self.streamer = TextIteratorStreamer(
            loaded.tokenizer, skip_prompt=True, skip_special_tokens=True
        )
        self._loaded = loaded
        self._ids = ids
        self._settings = settings
        self._thread = threading.Thread(target=self._run, name="generate", daemon=True)
        self._thread.start()

    def next_piece(self) -> str | None:
        """The next piece of text (blocks), or None once the generation has ended."""
        piece = next(self.streamer, None)
        return None if piece is None else str(piece)

    def cancel(self) -> None:
        """Stop after the current token (a stop string was seen, or the client left)."""
        self.cancelled.set()

    def join(self) -> None:
        self._thread.join()

    def _run(self) -> None:
        import torch
        from transformers import StoppingCriteriaList

        loaded, settings = self._loaded, self._settings
        try:
            with loaded.busy, torch.inference_mode():
                if settings.seed is not None:
                    torch.manual_seed(settings.seed)
                ids = torch.tensor([self._ids], device=loaded.device)
                out = loaded.model.generate(
                    input_ids=ids,
                    attention_mask=torch.ones_like(ids),
                    streamer=self.streamer,
                    stopping_criteria=StoppingCriteriaList([_until(self.cancelled)]),
                    **loaded.generate_kwargs(settings),
                )
            new = [int(i) for i in out[0, len(self._ids) :].tolist()]
            self.completion_tokens = len(new)
            ended = bool(new) and new[-1] in loaded.eos_ids
            if len(new) >= settings.max_new_tokens and not ended:
                self.finish_reason = "length"
        except BaseException as exc:
            log.exception("generation failed")
            self.error = exc
            self.streamer.end()  # wake the reader; a second end signal is harmless


def _until(event: threading.Event) -> Any:
    """A stopping criterion that ends the generation once ``event`` is set."""
    import torch
    from transformers import StoppingCriteria

    class Cancelled(StoppingCriteria):  # type: ignore[misc]
        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            flag = event.is_set()
            return torch.full(
                (input_ids.shape[0],), flag, dtype=torch.bool, device=input_ids.device
            )

    return Cancelled()


def placement(model: Any) -> str:
    """Where the weights are: ``cuda:0``, ``cpu, cuda:0`` (layers past a GPU share), or ``cpu``."""
    device_map = getattr(model, "hf_device_map", None)
    if not device_map:
        return str(model.device)
    devices = {f"cuda:{d}" if isinstance(d, int) else str(d) for d in device_map.values()}
    return ", ".join(sorted(devices))


def load_options(*, cuda: bool, dtype: str, gpu_memory_fraction: float | None) -> dict[str, Any]:
    """``from_pretrained`` arguments: every visible GPU (``device_map="auto"``), or the CPU."""
    if not cuda:
        # Half precision on a CPU is slow or unsupported on most machines.
        return {"dtype": "float32" if dtype == "auto" else dtype}
    options: dict[str, Any] = {"dtype": dtype, "device_map": "auto"}
    if gpu_memory_fraction is not None:
        options["max_memory"] = gpu_budget(gpu_memory_fraction)
    return options


def gpu_budget(fraction: float) -> dict[int | str, int]:
    """``max_memory`` for ``device_map="auto"``: a share of each visible GPU, the rest in RAM.

    The share bounds the weights; what a generation needs on top (activations,
    the KV cache) comes out of the remainder, so leave some.
    """
    import psutil
    import torch

    budget: dict[int | str, int] = {
        i: int(torch.cuda.get_device_properties(i).total_memory * fraction)
        for i in range(torch.cuda.device_count())
    }
    # Layers that do not fit go to RAM (slow, but served) rather than to disk.
    budget["cpu"] = int(psutil.virtual_memory().available * 0.9)
    return budget


def _context_length(config: Any, tokenizer: Any) -> int:
    for name in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    limit = getattr(tokenizer, "model_max_length", None)
    if isinstance(limit, int) and 0 < limit < 10**7:
        return limit
    return DEFAULT_CONTEXT
