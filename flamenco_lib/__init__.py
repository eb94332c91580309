"""Cante to text: fine-tune OpenAI Whisper to transcribe flamenco singing.

The library behind the notebooks in ``notebooks/``; ``python -m flamenco_lib --help`` lists the
command-line jobs. Every error it raises on purpose is a :class:`FlamencoError`.
"""

from .errors import FlamencoError

__all__ = ["FlamencoError"]
