"""Inference backends (vLLM, transformers) behind one protocol: chat requests in, answers out."""

from introspection.inference.base import Backend, choose_answer, make_answer
from introspection.inference.factory import make_backend

__all__ = ["Backend", "choose_answer", "make_answer", "make_backend"]
