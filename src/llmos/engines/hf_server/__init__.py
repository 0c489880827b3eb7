"""The transformers engine's server: any Hugging Face causal LM behind an OpenAI-compatible API.

Run as ``python -m llmos.engines.hf_server --model PATH ...``; the
:class:`~llmos.engines.transformers.TransformersEngine` starts it for a
ModelService. ``model.py`` loads and runs the model (the only module that
imports torch and transformers, and only when called), ``protocol.py`` holds
the request bodies, ``stops.py`` the stop-string scanner, ``app.py`` the
routes and ``__main__.py`` the command line. Nothing else in LLMOS imports
this package, so LLMOS itself never needs torch.
"""
