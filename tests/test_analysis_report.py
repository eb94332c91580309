"""The results notebook's tables (flamenco_lib.analysis), its figures' captions, the report's index
page, and notebooks/10_results.ipynb on a small results folder of real metrics files."""

from __future__ import annotations

import json
import platform
from importlib import metadata
from pathlib import Path

import jiwer
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import nbformat  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from flamenco_lib import analysis, evaluation, plotting, report, results  # noqa: E402
from flamenco_lib.text import normalize  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "10_results.ipynb"

CANTE = [  # (id, palo, what is sung)
    ("soleá-1", "soleá", "Ay, la luna de Triana se ha dormío en el río"),
    ("soleá-2", "soleá", "mi mare me lo decía que no te fueras al puerto"),
    ("fandango-1", "fandango", "por la calle del pozo va mi niña llorando"),
    ("fandango-2", "fandango", "que me lleven a Cádiz, que allí tengo mi querer"),
    ("bulería-1", "bulería", "tanto presumir de guapo y al final te has casao"),
]
SPEECH = [
    "el número que ha marcado no existe",
    "por favor, deje su mensaje después de la señal",
    "su llamada es importante para nosotros",
]
HYPS = {  # (row, test set): hypotheses, one per reference
    ("zero-shot", "cante"): [
        "la lula de triana se ha dormido en el río y",
        "mi madre me lo decía que no te fueras",
        "por la calle del pozo va mi niña llorando",
        "que me lleven a cadiz allí tengo mi querer",
        "tanto presumir de guapo al final te has casado",
    ],
    ("zero-shot", "speech"): [
        "el número que ha marcado no existe",
        "por favor deje su mensaje después de la señal",
        "su llamada es muy importante para nosotros",
    ],
    ("stage 1", "cante"): [
        "ay la luna de triana se ha dormío en el río",
        "mi mare me lo decía que no te fueras al puerto",
        "por la calle del pozo va mi niña",
        "que me lleven a cádiz que allí tengo mi querer",
        "tanto presumir de guapo y al final te has casao",
    ],
    ("stage 1", "speech"): [
        "el número que ha marcao no existe",
        "por favor deje su mensaje de la señal",
        "su llamada es importante pa nosotros",
    ],
    ("stage 2", "cante"): [
        "ay la luna de triana se ha dormío en el río",
        "mi mare me lo decía que no te fueras al puerto",
        "por la calle del pozo va mi niña llorando",
        "que me lleven a cádiz que allí tengo mi querer",
        "tanto presumir de guapo y al final te has casado",
    ],
    ("stage 3", "cante"): [
        "ay la luna de triana se ha dormío en el río",
        "mi mare me lo decía",
        "por la calle del pozo va mi niña llorando",
        "que me lleven a cádiz",
        "tanto presumir de guapo y al final te has casao",
    ],
    ("stage 3", "speech"): [
        "el número que ha marcado no existe soleá",
        "por favor deje su mensaje después de la señal",
        "su llamada es importante para nosotros",
    ],
    ("stage 3, soft prompt", "speech"): [
        "el número no existe",
        "por favor deje su mensaje después de la señal",
        "su llamada es importante para nosotros",
    ],
    # the prompt grid of notebook 09 on the verses (here the cante lines)
    ("stage 2", "verses"): [
        "la luna de triana se ha dormido",
        "mi mare me lo decía que no te fueras al puerto",
        "por la calle del pozo va mi niña",
        "que me lleven a cádiz",
        "tanto presumir de guapo y al final te has casao",
    ],
    ("stage 3", "verses"): [
        "ay la luna de triana se ha dormío",
        "mi mare me lo decía que no te fueras al puerto",
        "por la calle del pozo va mi niña llorando",
        "que me lleven a cádiz",
        "tanto presumir de guapo y al final te has casao",
    ],
    ("stage 3 + catalogue, copla in", "verses"): [t for _, _, t in CANTE],
    ("stage 3 + mismatched copla", "verses"): [
        "ay la luna de triana se ha dormío en el puerto",
        "mi mare me lo decía que no te fueras al puerto",
        "por la calle del pozo va mi niña llorando",
        "que me lleven a cádiz",
        "tanto presumir de guapo y al final te has casao",
    ],
}
# the first pass's search of the catalogue row: top-1 and top-5 shares of its lines
CATALOGUE_SEARCH = {"top1": 0.8, "topk": 1.0}


def _references(key):
    if key in ("cante", "verses"):
        return [{"id": i, "palo": p, "text": t, "text_canonical": t} for i, p, t in CANTE]
    return [{"id": f"speech-{k}", "text": t, "text_canonical": t} for k, t in enumerate(SPEECH)]


def _write_run(root, row, key, hyps):
    """A run folder as flamenco_lib.evaluation writes it: real metrics, matching predictions."""
    refs = _references(key)
    d = results.run_dir(row, key, root=root)
    d.mkdir(parents=True)
    metrics = evaluation.score_predictions(refs, hyps)
    if "catalogue" in row and "mismatched" not in row:
        metrics["catalogue"] = CATALOGUE_SEARCH
    (d / "metrics.json").write_text(json.dumps(metrics), encoding="utf-8")
    with open(d / "predictions.jsonl", "w", encoding="utf-8") as f:
        for r, h in zip(refs, hyps):
            rec = {
                "id": r["id"],
                "reference": r["text"],
                "reference_canonical": r["text"],
                "hypothesis": h,
                "prompt": None,
                "palo": r.get("palo"),
            }
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")


@pytest.fixture
def fake_results(tmp_path, monkeypatch):
    """``FLAMENCO_DATA`` with the runs of HYPS, ``FLAMENCO_REPORT`` empty; returns the results folder."""
    monkeypatch.setenv("FLAMENCO_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("FLAMENCO_REPORT", str(tmp_path / "report"))
    root = tmp_path / "data" / "results"
    for (row, key), hyps in HYPS.items():
        _write_run(root, row, key, hyps)
    for row, hyps in REAL_HYPS.items():  # the held-out speakers, for the per-speaker section
        _write_real_run(root, row, hyps)
    return root


def _write_real_run(root, row, hyps):
    refs = [
        {"id": f"real-{k}", "singer": who, "text": t, "text_canonical": t}
        for k, (who, t) in enumerate(REAL)
    ]
    d = results.run_dir(row, "real_sung", root=root)
    d.mkdir(parents=True)
    metrics = evaluation.score_predictions(refs, hyps)
    (d / "metrics.json").write_text(json.dumps(metrics), encoding="utf-8")


def _jiwer(row, key, palo=None):
    """jiwer's own counts on the normalised texts of one run (of one palo)."""
    refs = _references(key)
    keep = [i for i, r in enumerate(refs) if palo is None or r["palo"] == palo]
    return jiwer.process_words(
        [normalize(refs[i]["text"]) for i in keep], [normalize(HYPS[row, key][i]) for i in keep]
    )


def test_runs_and_sdi_tables_match_jiwer(fake_results):
    runs = analysis.runs_table()
    assert list(
        zip(runs["model"], runs["test_set"])
    ) == [  # the grid's order, runs without files left out
        ("zero-shot", "cante"),
        ("zero-shot", "real_sung"),
        ("zero-shot", "speech"),
        ("stage 1", "cante"),
        ("stage 1", "real_sung"),
        ("stage 1", "speech"),
        ("stage 2", "cante"),
        ("stage 3", "cante"),
        ("stage 3", "speech"),
        ("stage 3, soft prompt", "speech"),
    ]  # the verses are the prompt grid's, not a column of the results
    sdi = analysis.sdi_table().set_index(["model", "test_set"])
    for (row, key), r in runs.set_index(["model", "test_set"]).iterrows():
        if key == "real_sung":  # checked per speaker below
            continue
        out = _jiwer(row, key)
        n = out.hits + out.substitutions + out.deletions
        assert r["wer"] == pytest.approx(100 * out.wer) and r["n"] == len(HYPS[row, key])
        assert r["wer_lo"] <= r["wer"] <= r["wer_hi"]
        for kind in ("substitutions", "deletions", "insertions"):
            assert sdi.loc[(row, key), kind] == pytest.approx(100 * getattr(out, kind) / n)
        assert sdi.loc[
            (row, key), ["substitutions", "deletions", "insertions"]
        ].sum() == pytest.approx(r["wer"])


def test_per_palo_table_matches_jiwer_on_each_palo(fake_results):
    table = analysis.per_palo_table()
    assert sorted(set(table["model"])) == sorted({row for row, key in HYPS if key == "cante"})
    assert len(table) == len({row for row, key in HYPS if key == "cante"}) * len(
        {p for _, p, _ in CANTE}
    )
    for r in table.itertuples():
        assert r.wer == pytest.approx(100 * _jiwer(r.model, "cante", palo=r.palo).wer), (
            r.model,
            r.palo,
        )
        assert r.n == sum(p == r.palo for _, p, _ in CANTE)


REAL = [  # (speaker, what is said): real voices, a model's hypotheses per row
    ("drascula-billie-jean", "no me gusta nada este castillo"),
    ("drascula-billie-jean", "dame la mano y vamos"),
    ("drascula-l", "aquí no hay nadie que te ayude"),
    ("drascula-t", "la puerta está cerrada con llave"),
]


REAL_HYPS = {
    "zero-shot": ["no me gusta nada", "dame la mano vamos", "aquí no hay", "la puerta cerrada"],
    "stage 1": [t for _, t in REAL[:3]] + ["la puerta está cerrada con llave y"],
}


def test_per_speaker_table_matches_jiwer_on_each_speaker(fake_results):
    hyps = REAL_HYPS
    table = analysis.per_speaker_table()
    assert list(table["speaker"].unique()) == [
        "billie-jean (real_sung)",
        "l (real_sung)",
        "t (real_sung)",
    ]
    for r in table.itertuples():
        keep = [i for i, (who, _) in enumerate(REAL) if who == r.singer]
        out = jiwer.process_words(
            [normalize(REAL[i][1]) for i in keep], [normalize(hyps[r.model][i]) for i in keep]
        )
        assert r.wer == pytest.approx(100 * out.wer) and r.n == len(keep), (r.model, r.singer)
    assert analysis.per_speaker_table(("real_speech",)).empty  # no run: an empty table


def test_forgetting_and_prompt_grid_tables(fake_results):
    forgetting = analysis.forgetting_table()
    assert list(forgetting["model"]) == ["zero-shot", "stage 1", "stage 3"]  # on both sets
    for r in forgetting.itertuples():
        assert r.cante_wer == pytest.approx(100 * _jiwer(r.model, "cante").wer)
        assert r.speech_wer == pytest.approx(100 * _jiwer(r.model, "speech").wer)
    prompts = analysis.prompt_grid_table()
    assert list(prompts["model"]) == [  # PROMPT_GRID's order, rows without a run left out
        "stage 2",
        "stage 3",
        "stage 3 + catalogue, copla in",
        "stage 3 + mismatched copla",
    ]
    for r in prompts.itertuples():
        out = _jiwer(r.model, "verses")
        assert r.wer == pytest.approx(100 * out.wer) and r.n == len(CANTE)
        assert r.wer_lo <= r.wer <= r.wer_hi
        if r.model == "stage 3 + catalogue, copla in":  # the only row that searched
            assert (r.top1, r.top5) == (80.0, 100.0)
        else:
            assert pd.isna(r.top1) and pd.isna(r.top5), r.model
    pairs = analysis.paired_table(analysis.PROMPT_PAIRS)
    assert list(zip(pairs["baseline"], pairs["model"])) == [
        ("stage 2", "stage 3"),
        ("stage 2", "stage 3 + catalogue, copla in"),
        ("stage 2", "stage 3 + mismatched copla"),
        ("stage 3", "stage 3 + catalogue, copla in"),
        ("stage 3", "stage 3 + mismatched copla"),
    ]
    # the right copla as the prompt: every line right, fewer errors than stage 2
    assert pairs["wer_model"].iloc[1] == 0 and pairs["delta"].iloc[1] < 0


def test_tables_read_the_root_given_and_are_empty_without_results(fake_results, tmp_path):
    assert analysis.runs_table(root=fake_results).equals(analysis.runs_table())
    empty = tmp_path / "nothing"
    for table in (
        analysis.runs_table(root=empty),
        analysis.per_palo_table(root=empty),
        analysis.sdi_table(root=empty),
        analysis.forgetting_table(root=empty),
        analysis.prompt_grid_table(root=empty),
        analysis.best_and_worst("zero-shot__cante", root=empty),
    ):
        assert isinstance(table, pd.DataFrame) and table.empty


def test_paired_table_compares_runs_on_their_common_utterances(fake_results):
    t = analysis.paired_table(seed=0)
    got = {(r.baseline, r.model, r.test_set) for r in t.itertuples()}
    expected = {p for p in analysis.PAIRS if (p[0], p[2]) in HYPS and (p[1], p[2]) in HYPS}
    assert got == expected and expected  # exactly the pairs whose two runs exist
    row = t.set_index(["baseline", "model"]).loc[("zero-shot", "stage 1")]
    refs = _references("cante")

    def wer(hyps):
        return 100 * jiwer.wer([normalize(r["text"]) for r in refs], [normalize(h) for h in hyps])

    assert row["wer_baseline"] == pytest.approx(wer(HYPS[("zero-shot", "cante")]))
    assert row["wer_model"] == pytest.approx(wer(HYPS[("stage 1", "cante")]))
    assert row["delta"] == pytest.approx(row["wer_model"] - row["wer_baseline"]) and row[
        "n"
    ] == len(CANTE)
    assert row["delta_lo"] <= row["delta"] <= row["delta_hi"]
    verdict = (
        "better"
        if row["delta_hi"] < 0
        else "worse"
        if row["delta_lo"] > 0
        else "no clear difference"
    )
    assert row["verdict"] == verdict


def test_results_cli_prints_the_table_and_the_paired_comparisons(fake_results, capsys):
    from flamenco_lib.cli import main

    assert main(["results"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(results.markdown(results.results_table()))
    row = analysis.paired_table().round(1).iloc[0]
    assert (
        f"| {row.baseline} | {row.model} | {row.test_set} | {row.n} | {row.wer_baseline} |" in out
    )


def test_difference_plot_draws_each_difference_and_its_interval(fake_results):
    t = analysis.paired_table()
    ax = plotting.plot_differences(t, title="paired")
    lines = ax.get_lines()[:-1]  # per comparison (bottom-up): interval, point; then the zero line
    assert len(lines) == 2 * len(t)
    for k, row in enumerate(t.iloc[::-1].itertuples()):
        interval, point = lines[2 * k], lines[2 * k + 1]
        assert list(interval.get_xdata()) == pytest.approx([row.delta_lo, row.delta_hi])
        assert point.get_xdata()[0] == pytest.approx(row.delta)
        assert matplotlib.colors.same_color(point.get_color(), plotting.VERDICT_COLORS[row.verdict])
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert (
        labels[-1] == f"{t.model[0]} vs {t.baseline[0]} ({t.test_set[0]})"
    )  # the first pair on top


def test_difference_plot_draws_a_point_outside_its_interval():
    """On two utterances the percentile interval of a WER ratio can miss the point estimate (the
    smoke run of notebook 10 did): the plot must still draw both, not raise."""
    row = dict(baseline="zero-shot", model="stage-1", test_set="cante", verdict="better")
    t = [dict(row, delta=-5.0, delta_lo=-4.0, delta_hi=-1.0)]
    ax = plotting.plot_differences(t)
    interval, point = ax.get_lines()[:2]
    assert list(interval.get_xdata()) == [-4.0, -1.0]
    assert point.get_xdata()[0] == -5.0
    plt.close(ax.figure)


def test_best_and_worst_are_ranked_by_utterance_wer_and_aligned_as_jiwer(fake_results):
    refs = [normalize(r["text"]) for r in _references("cante")]
    hyps = [normalize(h) for h in HYPS["zero-shot", "cante"]]
    outs = [jiwer.process_words(r, h) for r, h in zip(refs, hyps)]
    wers = pd.Series([100 * o.wer for o in outs], index=[i for i, _, _ in CANTE])
    n = 2
    table = analysis.best_and_worst(results.run_dir("zero-shot", "cante"), n=n)
    assert list(table["rank"]) == ["best"] * n + ["worst"] * n
    assert list(table["id"][:n]) == list(wers.sort_values(kind="stable").index[:n])
    assert list(table["id"][n:]) == list(wers.sort_values(ascending=False, kind="stable").index[:n])
    assert table["wer"].tolist() == pytest.approx(wers[table["id"]].tolist())
    assert table.equals(
        analysis.best_and_worst("zero-shot__cante", n=n)
    )  # a name under the results folder
    for r in table.itertuples():
        k = list(wers.index).index(r.id)
        ops = [op for *_, op in r.alignment]
        assert (
            ops.count("substitute") == outs[k].substitutions
            and ops.count("delete") == outs[k].deletions
        )
        assert ops.count("insert") == outs[k].insertions and ops.count("equal") == outs[k].hits
        assert [w for w, _, op in r.alignment if op != "insert"] == refs[k].split()
        assert [w for _, w, op in r.alignment if op != "delete"] == hyps[k].split()


def test_format_alignment_puts_each_marker_under_its_words():
    ref, hyp, marks = analysis.format_alignment(
        analysis.align("La luna de Triana se", "la lula triana se, ay")
    )
    assert ref.startswith("REF: ") and hyp.startswith("HYP: ")
    for op_mark, ref_word, hyp_word in (
        ("S", "luna", "lula"),
        ("D", "de", "**"),
        ("I", "**", "ay"),
    ):
        col = marks.index(op_mark)
        assert ref[col:].startswith(ref_word) and hyp[col:].startswith(hyp_word)
    assert marks.count("S") == marks.count("D") == marks.count("I") == 1


def test_savefig_writes_a_caption_sidecar_and_drops_a_stale_one(tmp_path):
    fig, ax = plt.subplots()
    paths = plotting.savefig(fig, "10-test", outdir=tmp_path, caption="WER per palo")
    assert [p.name for p in paths] == ["10-test.png", "10-test.pdf"]  # the figures only, as before
    assert plotting.caption_of(paths[0]) == "WER per palo"
    plotting.savefig(fig, "10-test", outdir=tmp_path)
    assert not (tmp_path / "10-test.json").exists() and plotting.caption_of(paths[0]) == "10-test"
    plt.close(fig)


def test_write_tables_writes_csv_and_markdown(fake_results, tmp_path):
    written = report.write_tables()
    names = sorted(p.name for p in written)
    expected = ["forgetting", "paired", "per_palo", "prompts", "results", "runs", "sdi"]
    assert names == sorted(f"{n}.{ext}" for n in expected for ext in ("csv", "md"))
    tables = tmp_path / "report" / "tables"
    pd.testing.assert_frame_equal(pd.read_csv(tables / "per_palo.csv"), analysis.per_palo_table())
    assert (tables / "results.md").read_text().startswith(results.markdown(results.results_table()))
    grid_md = (tables / "prompts.md").read_text().splitlines()  # the prompt grid on the verses
    assert grid_md[0] == "| model | n | wer | wer_lo | wer_hi | cer | top1 | top5 |"
    assert grid_md[2].startswith("| stage 2 | 5 |") and grid_md[2].endswith(" |  |  |")  # no search
    assert grid_md[4].endswith("| 80.0 | 100.0 |") and "nan" not in "".join(grid_md)
    assert report.write_tables(tmp_path / "empty-tables", root=tmp_path / "nothing") == []


def test_index_page_shows_every_figure_results_profile_timings_and_versions(fake_results, tmp_path):
    figures = tmp_path / "report" / "figures"
    fig, ax = plt.subplots()
    plotting.savefig(fig, "10-captioned", caption="Cante <b>WER</b> & friends")
    plotting.savefig(fig, "10-plain")
    fig.savefig(figures / "99-by-hand.png")  # a PNG with no sidecar at all
    plt.close(fig)
    assert "no results yet" not in report.build_index(profile="cpu", timings={}).read_text(
        encoding="utf-8"
    )
    smoke = tmp_path / "data" / "smoke"  # a smoke report reads the smoke runs' results, kept apart
    smoke.mkdir()
    fake_results = fake_results.rename(smoke / "results")
    assert "no results yet" in report.build_index(profile="cpu", timings={}).read_text(
        encoding="utf-8"
    )
    index = report.build_index(profile="smoke", timings={"10_results.ipynb": 12.25})
    assert index == tmp_path / "report" / "index.html"
    page = index.read_text(encoding="utf-8")
    for png in figures.glob("*.png"):
        assert f'src="figures/{png.name}"' in page  # relative: the folder can be moved
    assert str(tmp_path) not in page
    assert "Cante &lt;b&gt;WER&lt;/b&gt; &amp; friends" in page and "<b>WER</b>" not in page
    assert ">10-plain " in page and ">99-by-hand " in page  # captions fall back to the name
    assert f"<td>{evaluation.git_revision() or 'unknown'}</td>" in page and "<td>smoke</td>" in page
    assert "<th>10_results.ipynb</th><td>12.2</td>" in page
    assert (
        f"<td>{platform.python_version()}</td>" in page
        and f"<td>{metadata.version('jiwer')}</td>" in page
    )
    zs = json.loads(
        (results.run_dir("zero-shot", "cante", root=fake_results) / "metrics.json").read_text()
    )
    assert (
        f"<td>{100 * zs['wer']:.1f} [{100 * zs['wer_ci'][0]:.1f}, {100 * zs['wer_ci'][1]:.1f}]</td>"
        in page
    )


def _tiny_notebook(path):
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell('profile = "cpu"', metadata={"tags": ["parameters"]}),
            nbformat.v4.new_code_cell("print(profile)"),
        ]
    )
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, path)


@pytest.mark.notebook
def test_build_ends_with_the_index_and_the_notebook_timings(tmp_path, monkeypatch):
    monkeypatch.setenv("FLAMENCO_ROOT", str(tmp_path))  # a project whose only notebook is tiny
    monkeypatch.setenv("FLAMENCO_REPORT", str(tmp_path / "report"))
    monkeypatch.setattr(report, "feature_figures", lambda outdir=None: [])
    (tmp_path / "notebooks").mkdir()
    _tiny_notebook(tmp_path / "notebooks" / "01_tiny.ipynb")
    written = report.build(profile="smoke")
    assert written[-1] == tmp_path / "report" / "index.html"
    page = written[-1].read_text(encoding="utf-8")
    assert "<th>01_tiny.ipynb</th><td>" in page and "<td>smoke</td>" in page


def _run_notebook(out):
    papermill = pytest.importorskip("papermill")
    papermill.execute_notebook(
        str(NOTEBOOK),
        str(out),
        parameters={"profile": "smoke"},
        kernel_name="python3",
        cwd=str(ROOT),
        progress_bar=False,
    )
    executed = nbformat.read(out, as_version=4)
    return "".join(
        o.get("text", "")
        for c in executed.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
    )


@pytest.mark.notebook
def test_results_notebook_draws_its_figures_and_writes_its_tables(fake_results, tmp_path):
    (tmp_path / "data" / "smoke").mkdir()
    fake_results.rename(
        tmp_path / "data" / "smoke" / "results"
    )  # where the smoke runs of 05-09 keep them
    text = _run_notebook(tmp_path / "10_results.ipynb")
    report_dir = tmp_path / "report"
    for name in (
        "10-stage-comparison",
        "10-paired",
        "10-per-palo",
        "10-sdi",
        "10-forgetting",
        "10-prompts",
    ):
        for ext in ("png", "pdf", "json"):
            assert (report_dir / "figures" / f"{name}.{ext}").exists(), f"{name}.{ext}"
    csv, md = (
        sorted((report_dir / "tables").glob("*.csv")),
        sorted((report_dir / "tables").glob("*.md")),
    )
    assert (
        [p.stem for p in csv] == [p.stem for p in md]
        and "results" in [p.stem for p in csv]
        and len(csv) == 7
    )
    assert "[worst]" in text and "REF: " in text and "HYP: " in text
    assert analysis.NO_RESULTS not in text


@pytest.mark.notebook
def test_results_notebook_completes_without_results(tmp_path, monkeypatch):
    monkeypatch.setenv("FLAMENCO_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("FLAMENCO_REPORT", str(tmp_path / "report"))
    text = _run_notebook(tmp_path / "10_results.ipynb")
    assert (
        text.count("python -m flamenco_lib results --evaluate") >= 8
    )  # the table and every section say so
    assert not list((tmp_path / "report").glob("**/*.png")) and not list(
        (tmp_path / "report").glob("**/*.csv")
    )


def test_docstring_examples_hold():
    import doctest

    outcome = doctest.testmod(analysis)
    assert outcome.attempted > 0 and outcome.failed == 0


def test_training_losses_draw_one_line_per_stage():
    summaries = {
        "stage 1": {
            "log": [
                {"step": 1, "loss": 2.0},
                {"step": 2, "loss": 1.5},
                {"step": 2, "eval_wer": 0.3},
            ]
        },
        "control": {"log": [{"step": 1, "loss": 1.0}, {"step": 2, "loss": 0.4}]},
    }
    ax = plotting.plot_training_losses(summaries, title="losses")
    lines = ax.get_lines()
    assert [line.get_label() for line in lines] == ["stage 1", "control"]
    assert list(lines[0].get_ydata()) == [2.0, 1.5] and list(lines[1].get_xdata()) == [
        1,
        2,
    ]  # eval entries left out
    assert ax.get_title() == "losses"
    plt.close(ax.figure)
