"""The experiment grid: which models are compared on which test sets.

Rows (:data:`STAGES`) are models: zero-shot Whisper, stage 1, its spoken control, stage 2, and the
stage-3 variants; columns (:data:`TEST_SETS`) are the test sets of DESIGN.md. :func:`stage_rows`
points each row at the folder its stage config trains into in a profile.
:mod:`flamenco_lib.pipeline` trains the rows, :mod:`flamenco_lib.results` evaluates and tabulates
them, :mod:`flamenco_lib.analysis` compares them; all three import the grid from here.

Notebooks: ``06_zero_shot`` to ``10_results``.
"""

from __future__ import annotations

from pathlib import Path

from .paths import project_root

# (row label, model: a size or a stage's output_dir relative to the data folder[, options]).
# Options: "prompts" (prompt kinds given to every test utterance) and "sets" (only these test sets).
# A model folder holding soft_prompt.pt (configs/stage3_soft.yaml) is decoded with its soft prompt.
# Prompts are compared on the verses (PROMPT_GRID below), where each line has a line before it
# and a copla; here the stage-3 rows are the final model and the soft prompt's forgetting check.
STAGES = (
    ("zero-shot", "base"),
    ("stage 1", "checkpoints/stage1"),
    # the control answers one question (voices or singing?): the cante set, sung and spoken
    ("stage 1, spoken control", "checkpoints/stage1_spoken", {"sets": ("cante", "cante_spoken")}),
    ("stage 2", "checkpoints/stage2"),
    # the final model: the cante set, the held-out speakers sung and spoken, and forgetting
    ("stage 3", "checkpoints/stage3", {"sets": ("cante", "real_sung", "real_speech", "speech")}),
    # the soft prompt is always on, for speech too: does it cost ordinary Spanish?
    ("stage 3, soft prompt", "checkpoints/stage3_soft", {"sets": ("speech",)}),
)
# The prompt grid of notebook 09 (issue: prompts that carry information), on verses: each row one
# way of decoding the same test lines, paired against stage 2 without a prompt. Options beyond
# "prompts": "previous" (own: the model's transcript of the line before; true: the manifest's),
# "leave_out_evaluated" (the evaluated coplas removed from the catalogue: new lyrics) and
# "mismatched" (a random other copla as the prompt: the control).
_S3 = "checkpoints/stage3"
PROMPT_GRID = (
    ("stage 2", "checkpoints/stage2"),
    ("stage 3", _S3),
    ("stage 3 + palo", _S3, {"prompts": ("palo",)}),
    ("stage 3 + lexicon", _S3, {"prompts": ("lexicon",)}),
    ("stage 3 + previous, own", _S3, {"prompts": ("previous",), "previous": "own"}),
    ("stage 3 + previous, true", _S3, {"prompts": ("previous",), "previous": "true"}),
    ("stage 3 + catalogue, copla in", _S3, {"prompts": ("catalogue",)}),
    (
        "stage 3 + catalogue, copla out",
        _S3,
        {"prompts": ("catalogue",), "leave_out_evaluated": True},
    ),
    ("stage 3 + mismatched copla", _S3, {"prompts": ("catalogue",), "mismatched": True}),
    ("stage 3, soft prompt", "checkpoints/stage3_soft"),
)
# lines of the test songs (copla and line before known): the prompt grid's test set
VERSES = (("verses", "corpora/songs/manifest.jsonl", "test"),)
# (column key, manifest relative to the data folder, split)
TEST_SETS = (
    ("cante", "corpora/cante/manifest.jsonl", "test"),  # synthetic voices: held-out lyrics
    ("cante_spoken", "corpora/cante-spoken/manifest.jsonl", "test"),  # the same clips, spoken
    # real voices no model trains on: three Drascula characters, sung by the same transform...
    ("real_sung", "corpora/cante-drascula/manifest.jsonl", "test"),
    ("real_speech", "corpora/speech-drascula/manifest.jsonl", "test"),  # ...and as recorded
    # the asterisk speaker (stage 2 trains on her other prompts): the forgetting check of DESIGN.md
    ("speech", "corpora/speech/manifest.jsonl", "test"),
)


def config_file(name: str) -> Path:
    """The project's stage config ``configs/<name>.yaml`` (``stage1``, ``stage2``...)."""
    return project_root() / "configs" / f"{name}.yaml"


def zero_shot_model(profile: str) -> str:
    """The Whisper the stages start from in ``profile`` (``configs/stage1.yaml``'s ``model``):
    ``base`` on ``cpu``, ``small`` on ``gpu``. The zero-shot row compares with this model.
    Read from the YAML alone: the notebooks ask before any corpus is built."""
    import yaml

    raw = yaml.safe_load(config_file("stage1").read_text(encoding="utf-8")) or {}
    chosen = (raw.get("profiles") or {}).get(profile) or {}
    return str(chosen.get("model", raw.get("model", "base")))


def stage_rows(*labels: str, profile: str, base: str = "base", table=STAGES) -> list[tuple]:
    """The rows of ``table`` (:data:`STAGES` or :data:`PROMPT_GRID`) named by ``labels`` (in
    the table's order; none: all), each model replaced by the ``output_dir`` its config
    (``checkpoints/stage2`` -> ``configs/stage2.yaml``) has in ``profile``, and ``"base"`` by
    ``base`` (e.g. a local whisper-base folder)."""
    from .training import load_config

    labels = labels or tuple(label for label, *_ in table)
    unknown = set(labels) - {label for label, *_ in table}
    if unknown:
        raise ValueError(f"no row {min(unknown)!r} in this grid of flamenco_lib.grid")
    rows = []
    for label, model, *opts in table:
        if label in labels:
            if model != "base":
                model = load_config(config_file(Path(model).name), profile=profile).output_dir
            rows.append((label, base if model == "base" else model, *opts))
    return rows
