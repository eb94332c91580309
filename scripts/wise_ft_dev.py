"""Weight-space ensembles (WiSE-FT) of a fine-tuned stage with zero-shot whisper-base, on the dev sets.

A lever of the real-voices issue ("how far the model moves"): a fine-tuned model that forgets
general Spanish might keep most of its cante gain and recover the real speech of speakers it never
heard when its weights are moved back part of the way to whisper-base's,
``base + alpha * (fine-tuned - base)`` (Wortsman et al., "Robust fine-tuning of zero-shot
models", CVPR 2022). Costs no training: each alpha is a new folder of weights, scored like the
stage-1 ablations on :data:`flamenco_lib.ablation.DEV_SETS` (the synthetic cante dev lyrics, and
the Drascula dev speaker sung and spoken), never on test.

Measured (README, "Real voices"): on the chain of 2026-12-05, stage 3 with alpha 0.7 moved no dev
set beyond noise and alpha 0.5 gave real speech back (39.4 -> 36.3, zero-shot 35.9) at 6 points of
cante and 3 of the real voices sung: not adopted. On the chain of 2026-12-06 (wider formants, the
Drascula characters balanced) alpha 0.8 gave real speech 1.8 points back with cante and the sung
voices unchanged; adopted in ``configs/stage3.yaml`` (``wise_ft``), it also took stage 3's gain
from its previous-line prompt on the test verses, and so did the decoder alone at 0.6 on the dev
verses: undone. A stage trained with ``wise_ft`` is already moved: an alpha given here compounds.

Usage: .venv/bin/python scripts/wise_ft_dev.py [--stage stage3] [--alphas 0.5,0.7]
       [--part all|encoder|decoder]   (--part: move only the encoder's or the decoder's weights)
Writes data/calibration/wise-ft/ (weights and runs) and prints a table. About 3 minutes per model
on 2 cores with bf16.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from safetensors.torch import load_file, save_file

from flamenco_lib.ablation import DEV_ITEMS, DEV_SETS
from flamenco_lib.models import resolve
from flamenco_lib.paths import data_dir
from flamenco_lib.results import evaluate_stages, results_table
from flamenco_lib.training.model_parts import wise_ft


def interpolate(
    base_dir: Path, tuned_dir: Path, alpha: float, out: Path, part: str = "all"
) -> Path:
    """Write ``base + alpha * (tuned - base)``, weight by weight (only the weights of ``part``,
    ``encoder`` or ``decoder``, unless ``all``; the others as tuned), with ``tuned_dir``'s config
    and tokenizer files, into ``out``; kept when it is newer than the tuned weights (a stage
    trained again is interpolated again)."""
    done, source = out / "model.safetensors", tuned_dir / "model.safetensors"
    if done.exists() and done.stat().st_mtime >= source.stat().st_mtime:
        return out
    base = load_file(str(base_dir / "model.safetensors"))
    tuned = load_file(str(tuned_dir / "model.safetensors"))
    try:
        moved = wise_ft(tuned, base, alpha)
    except ValueError:
        raise SystemExit(f"{tuned_dir}: not the same architecture as {base_dir}") from None
    mixed = {  # the weights of `part` moved, the others as tuned
        k: (moved[k] if part == "all" or k.startswith(f"model.{part}.") else v).contiguous()
        for k, v in tuned.items()
    }
    out.mkdir(parents=True, exist_ok=True)
    for f in tuned_dir.iterdir():
        if f.is_file() and f.name != "model.safetensors":
            shutil.copy(f, out / f.name)
    save_file(mixed, str(out / "model.safetensors"), metadata={"format": "pt"})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stage", default="stage3", help="a folder under data/checkpoints")
    ap.add_argument("--alphas", default="0.5,0.7", help="shares of the fine-tuning kept, a,b,...")
    ap.add_argument("--part", default="all", choices=("all", "encoder", "decoder"))
    args = ap.parse_args()
    tuned = data_dir() / "checkpoints" / args.stage / "final"
    if not (tuned / "model.safetensors").exists():
        raise SystemExit(f"{tuned}: not trained yet; run `make stages` (or `make report`) first")
    base = Path(resolve("base"))
    root = data_dir() / "calibration" / "wise-ft"
    name = Path(args.stage).name
    rows = [("zero-shot", "base"), (name, str(tuned))]
    part = "" if args.part == "all" else f"{args.part} "
    for alpha in (float(a) for a in args.alphas.split(",")):
        folder = root / "models" / f"{name}-{part.strip() or 'all'}-alpha{alpha}"
        out = interpolate(base, tuned, alpha, folder, args.part)
        rows.append((f"{name}, {part}alpha {alpha}", str(out)))
    evaluate_stages(rows, DEV_SETS, max_items=DEV_ITEMS, root=root / "results")
    table = results_table([(r[0],) for r in rows], DEV_SETS, root=root / "results")
    keep = ["model"] + [c for c in table.columns if c.endswith(("_wer", "_wer_lo", "_wer_hi"))]
    print(table[keep].round(1).to_string(index=False))


if __name__ == "__main__":
    main()
