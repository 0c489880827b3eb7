"""llama-cpp-python's OpenAI server, with what LLMOS needs and it lacks.

Run as ``python -m llmos.engines.llama_server`` with llama-cpp-python's own
flags; :class:`~llmos.engines.llama_cpp.LlamaCppEngine` starts it. It adds:

- the ``usage`` chunk at the end of a stream that asks for it
  (``stream_options.include_usage``, as OpenAI and vLLM answer), with the
  same counts a non-streamed reply reports (``usage.py``);
- ``/health``, which answers without the model's lock, so the readiness probe
  neither waits behind a generation nor fills the replica's log (its lines are
  left out of the access log).

Nothing else in LLMOS imports this package: only the engine's process needs
llama_cpp.
"""
