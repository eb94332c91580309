"""Corpora behind one manifest format (see ``manifest.py`` and DESIGN.md, "Manifest").

- :mod:`.manifest` — the JSONL schema, reading, writing and validation;
- :mod:`.speech` — real Spanish read speech from Debian's asterisk prompts (offline Common Voice stand-in).
"""
