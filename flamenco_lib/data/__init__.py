"""Corpora behind one manifest format (see ``manifest.py`` and DESIGN.md, "Manifest").

- :mod:`.manifest` — the JSONL schema, reading, writing and validation;
- :mod:`.lyrics` — lyrics files (TSV or JSONL, one copla per row with its palo);
- :mod:`.speech` — real Spanish read speech from Debian's asterisk prompts (offline Common Voice stand-in);
- :mod:`.synth` — one synthetic cante clip: espeak-ng speech, sung (Praat PSOLA), guitar and palmas;
- :mod:`.cante` — the synthetic cante corpus: plan (splits by lyric, held-out voice), parallel,
  resumable rendering, real voices sung (``python -m flamenco_lib data synth``);
- :mod:`.corpus` — manifests as ``datasets`` objects, the corpus builders, Common Voice;
- :mod:`.stats` — numbers about a corpus: clips and hours per split, palos and voices, styles compared.
"""
