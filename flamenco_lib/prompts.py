"""Text prompts for Whisper's previous-text slot (stage 3).

Whisper was trained with the text of the previous window in front of the current one,
``<|startofprev|> previous text <|startoftranscript|><|es|><|transcribe|><|notimestamps|> text``,
with no loss on the previous text. Stage 3 puts a flamenco prompt there:

- the palo (``"Soleá."``), which names the form and its vocabulary;
- the previous verse of the same copla/song, when there is one;
- a flamenco lexicon: words the corpus uses that general Spanish rarely does (``pena``,
  ``fatigas``, ``mare``, ``fragua``...), the way one would prime the spelling of names;
- the copla found in a lyrics catalogue (``catalogue``): a first, unprompted pass transcribes
  the clip, its transcript finds the nearest letra (:mod:`flamenco_lib.catalogue`), and the
  second pass decodes with that letra as the prompt. In training the prompt is the true copla,
  or a near miss (another copla of the same palo, :data:`NEAR_MISS` of the time), so that the
  model learns to use a prompt that is partly right and to ignore a wrong one.

The prompt is capped (:data:`MAX_PROMPT_TOKENS`): Whisper's prompt slot holds at most half of the
448-token context (``max_target_positions // 2 - 1`` = 223 tokens, ``<|startofprev|>`` included);
a longer prompt keeps its *last* tokens, as Whisper keeps the most recent context.
``generate(prompt_ids=...)`` builds exactly the same layout (tests/test_prompts.py;
:func:`generate_decoder_input` shows what it feeds the decoder).

Notebook: ``09_stage3_prompts.ipynb``.
"""

from __future__ import annotations

from collections import Counter

from .text import normalize

MAX_PROMPT_TOKENS = 223  # Whisper: max_target_positions // 2 - 1, <|startofprev|> included
STOPWORDS = frozenset(
    "a al ante con de del desde el en entre es ha hay la las le lo los me mi mis ni no o para pero por "
    "que qué se si sin su sus te tu tus un una uno y ya yo él ella como cuando donde más muy nos os "
    "era fue soy son está están tengo tiene ay".split()
)


def lexicon(texts, *, size: int = 40, min_count: int = 2) -> list[str]:
    """The corpus's own vocabulary: its most frequent content words (no stopwords, 3+ letters),
    most frequent first — e.g. from the training lyrics only, never the test ones."""
    counts = Counter(
        w for t in texts for w in normalize(t).split() if len(w) >= 3 and w not in STOPWORDS
    )
    return [w for w, c in counts.most_common() if c >= min_count][:size]


def build_prompt(
    *,
    palo: str | None = None,
    previous: str | None = None,
    words: list[str] | None = None,
    copla: str | None = None,
) -> str | None:
    """A prompt from the palo, a catalogue's copla, the previous verse and lexicon words; None
    when all are empty.

    >>> build_prompt(palo="soleá", previous="Le pregunté a la luna", words=["pena", "fragua"])
    'Soleá. Le pregunté a la luna. pena, fragua.'
    """
    parts = []
    if palo:
        parts.append(palo[:1].upper() + palo[1:] + ".")
    if copla:
        parts.append(copla.strip().rstrip(".,;") + ".")
    if previous:
        parts.append(previous.strip().rstrip(".,;") + ".")
    if words:
        parts.append(", ".join(words) + ".")
    return " ".join(parts) or None


def prompt_token_ids(
    tokenizer, prompt: str | None, *, max_tokens: int = MAX_PROMPT_TOKENS
) -> list[int]:
    """``<|startofprev|>`` + the prompt's tokens (with a leading space, as
    ``WhisperProcessor.get_prompt_ids``), keeping the last ``max_tokens - 1``; [] for no prompt."""
    if not prompt or not prompt.strip():
        return []
    sop = tokenizer.convert_tokens_to_ids("<|startofprev|>")
    ids = tokenizer.encode(" " + prompt.strip(), add_special_tokens=False)
    return [sop] + ids[-(max_tokens - 1) :]


KINDS = ("palo", "previous", "lexicon", "catalogue")
NEAR_MISS = 0.3  # training: share of catalogue prompts that are another copla of the same palo


def prompts_for(
    rows, *, kinds, words: list[str] | None = None, found: list[str | None] | None = None
) -> list[str | None]:
    """One prompt per manifest row from the requested ``kinds`` (see :data:`KINDS`): the row's
    ``palo``, its ``previous_text`` (the verse sung before it, when the corpus has one), the
    lexicon ``words`` and, for ``catalogue``, ``found``: one copla text per row (what a
    catalogue search found for it, None where nothing was found)."""
    unknown = set(kinds) - set(KINDS)
    if unknown:
        raise ValueError(f"prompt kinds {sorted(unknown)}: expected some of {KINDS}")
    if "catalogue" in kinds and (found is None or len(found) != len(rows)):
        raise ValueError("the catalogue prompt needs one found copla (or None) per row")
    return [
        build_prompt(
            palo=r.get("palo") if "palo" in kinds else None,
            previous=r.get("previous_text") if "previous" in kinds else None,
            words=words if "lexicon" in kinds else None,
            copla=found[i] if "catalogue" in kinds else None,
        )
        for i, r in enumerate(rows)
    ]


def one_kind_each(
    rows, *, kinds, rng, words: list[str] | None = None, found: list[str | None] | None = None
) -> list[str | None]:
    """Training with several prompt kinds (``prompt_pick: one``): each row gets the prompt of one
    kind, drawn uniformly among the ``kinds`` it has (a ``palo``, a ``previous_text``, a
    ``found`` copla; the lexicon only for rows with a palo), None when it has none (real speech).
    So each kind is trained alone, as the evaluation grid decodes it, not only in one long mix.

    >>> import numpy as np
    >>> one_kind_each([{"palo": "soleá"}, {}], kinds=["palo", "previous"], rng=np.random.default_rng(0))
    ['Soleá.', None]
    """
    found = found if found is not None else [None] * len(rows)
    has = {
        "palo": lambda r, f: bool(r.get("palo")),
        "previous": lambda r, f: bool(r.get("previous_text")),
        "lexicon": lambda r, f: bool(words) and bool(r.get("palo")),
        "catalogue": lambda r, f: bool(f),
    }
    out = []
    for r, f in zip(rows, found, strict=True):
        usable = [k for k in kinds if has[k](r, f)]
        kind = usable[int(rng.integers(len(usable)))] if usable else None
        out.append(prompts_for([r], kinds=[kind], words=words, found=[f])[0] if kind else None)
    return out


def mismatched_coplas(rows, catalogue, *, seed: int = 0) -> list[str]:
    """The control of the catalogue prompt: for each row a random copla of ``catalogue``
    (:class:`~flamenco_lib.catalogue.Catalogue`) that is not the one it sings (by ``copla_id``),
    drawn by a seeded generator. A model that reads its prompt, rather than taking any text as a
    hint, must not get better with these."""
    import numpy as np

    rng = np.random.default_rng([int(seed), 19])
    out = []
    for r in rows:
        others = [i for i in catalogue.ids if i != r.get("copla_id")]
        out.append(catalogue.text_of(others[int(rng.integers(len(others)))]))
    return out


def training_coplas(rows, coplas) -> dict[str, list]:
    """The coplas of ``coplas`` (:class:`~flamenco_lib.data.lyrics.Copla`) that the training
    ``rows`` sing (by ``copla_id``), grouped by palo: where :func:`catalogue_choice` draws its
    near misses, so that a training prompt never shows a dev or test copla."""
    used = {r.get("copla_id") for r in rows}
    out: dict[str, list] = {}
    for c in coplas:
        if c.id in used:
            out.setdefault(c.palo, []).append(c)
    return out


def catalogue_choice(row: dict, by_palo: dict[str, list], rng) -> str | None:
    """A training example's catalogue prompt: the text of the copla it sings, or with
    probability :data:`NEAR_MISS` another copla of the same palo (the catalogue search's
    typical mistake). None for a row that sings no known copla (real speech)."""
    pool = by_palo.get(row.get("palo") or "", [])
    true = next((c for c in pool if c.id == row.get("copla_id")), None)
    if true is None:
        return None
    others = [c for c in pool if c.id != true.id]
    if others and rng.random() < NEAR_MISS:
        return others[int(rng.integers(len(others)))].text
    return true.text


def generate_decoder_input(
    model,
    processor,
    features,
    *,
    prompt: str | None = None,
    language: str = "es",
    max_new_tokens: int = 40,
) -> tuple[list[int], list[int]]:
    """What ``generate(prompt_ids=...)`` feeds Whisper's decoder for one clip, seen by a forward
    pre-hook on the decoder: the decoder's whole input (the first call's ids, then the one token added
    at each cached step), and the ids ``generate`` returns.

    features : (1, n_mels, 3000) log-Mel input features of one clip.
    Compare with :func:`flamenco_lib.training.collate_labels` (``decoder_input_ids``) of the same text
    and prompt: the two layouts are equal token for token.
    """
    seen = []

    def record(module, args, kwargs):
        ids = kwargs.get("input_ids")
        seen.append((ids if ids is not None else args[0]).clone())

    hook = model.model.decoder.register_forward_pre_hook(record, with_kwargs=True)
    try:
        kw = {"prompt_ids": processor.get_prompt_ids(prompt, return_tensors="pt")} if prompt else {}
        out = model.generate(
            features, language=language, task="transcribe", max_new_tokens=max_new_tokens, **kw
        )
    finally:
        hook.remove()
    return seen[0][0].tolist() + [int(x[0, -1]) for x in seen[1:]], out[0].tolist()
