"""LLMOS: run LLMs and AI workloads on your own GPU machines."""

__version__ = "0.1.0"
