"""flamenco_lib.metrics against jiwer, and the properties of its bootstrap and indicators."""

import jiwer
import pytest

from flamenco_lib import metrics as M
from flamenco_lib.text import normalize

REFS = [
    "Mi mare, la de Triana",
    "¿Dónde vas, gitana?",
    "Fatigas de la fragua",
    "El yunque y la luna",
]
HYPS = ["mi madre la de triana", "donde vas gitana", "fatigas de fragua fragua", ""]


def test_wer_cer_equal_jiwer_on_normalised_text():
    r, h = [normalize(x) for x in REFS], [normalize(x) for x in HYPS]
    assert M.wer(REFS, HYPS) == pytest.approx(jiwer.wer(r, h))
    assert M.cer(REFS, HYPS) == pytest.approx(jiwer.cer(r, h))
    assert M.wer(REFS, HYPS, normalize=False) == pytest.approx(
        jiwer.wer(REFS, [x or "" for x in HYPS])
    )
    assert M.wer(REFS, REFS) == 0.0


def test_score_breakdown_matches_jiwer():
    s = M.score(REFS, HYPS, groups={"palo": ["soleá", "bulería", "soleá", "martinete"]})
    out = jiwer.process_words([normalize(x) for x in REFS], [normalize(x) for x in HYPS])
    assert (s.substitutions, s.deletions, s.insertions, s.hits) == (
        out.substitutions,
        out.deletions,
        out.insertions,
        out.hits,
    )
    assert s.wer == pytest.approx(out.wer)
    assert s.ref_words == s.hits + s.substitutions + s.deletions
    assert s.wer_ci[0] <= s.wer <= s.wer_ci[1]
    soleá = s.per_group.query("group == 'soleá'").iloc[0]
    sub = jiwer.wer(
        [normalize(REFS[0]), normalize(REFS[2])], [normalize(HYPS[0]), normalize(HYPS[2])]
    )
    assert soleá["n"] == 2 and soleá["wer"] == pytest.approx(sub)
    assert s.wer_raw > s.wer  # case and punctuation count as errors before normalising
    assert set(s.to_dict()) >= {"wer", "cer", "wer_ci", "per_group", "loops"}


def test_bootstrap_is_seeded_and_tightens_with_data(rng):
    errors = rng.integers(0, 4, size=400)
    lengths = rng.integers(5, 12, size=400)
    a = M.bootstrap_ci(errors, lengths, seed=1)
    assert a == M.bootstrap_ci(errors, lengths, seed=1)
    small = M.bootstrap_ci(errors[:20], lengths[:20], seed=1)
    assert (a[1] - a[0]) < (small[1] - small[0])
    point = errors.sum() / lengths.sum()
    assert a[0] < point < a[1]


def test_hallucination_indicators():
    loop = "a mí, " * 40
    assert M.compression_ratio(loop) > M.COMPRESSION_RATIO_THRESHOLD
    assert (
        M.compression_ratio("Por favor ingrese su numero de agente") < M.COMPRESSION_RATIO_THRESHOLD
    )
    assert M.repeated_ngram_rate("la luna la luna la luna la luna") > 0.5
    assert M.repeated_ngram_rate("la luna de plata sobre Triana") == 0.0
    s = M.score(["la luna sale"], [loop])
    assert s.loops == 1 and s.insertions > 50


@pytest.mark.parametrize(
    "refs,hyps,needle",
    [
        ([], [], "empty"),
        (["a"], ["a", "b"], "1 references but 2"),
        (["¿?", "..."], ["a", "b"], "empty after normalisation"),
    ],
)
def test_errors_are_clear(refs, hyps, needle):
    with pytest.raises(ValueError, match=needle):
        M.score(refs, hyps)


def test_group_length_mismatch():
    with pytest.raises(ValueError, match="group 'palo'"):
        M.score(["a b"], ["a b"], groups={"palo": ["x", "y"]})


def test_single_string_is_rejected():
    with pytest.raises(TypeError):
        M.wer("una frase", "una frase")


def test_paired_bootstrap_difference_and_interval(rng):
    refs = [f"la luna {i} de triana se ha dormío en el río" for i in range(60)]
    a = [r.replace("luna", "lula") for r in refs]  # one substitution per utterance
    b = [r if i % 3 else r.replace("río", "mío") for i, r in enumerate(refs)]  # one in every third
    d = M.paired_bootstrap(refs, a, b)
    assert d["wer_a"] == pytest.approx(M.wer(refs, a)) and d["wer_b"] == pytest.approx(
        M.wer(refs, b)
    )
    assert d["delta"] == pytest.approx(M.wer(refs, b) - M.wer(refs, a))
    assert (
        d["delta_lo"] <= d["delta"] <= d["delta_hi"] < 0 and d["p_b_better"] == 1.0
    )  # B better in every resample
    same = M.paired_bootstrap(refs, a, a)
    assert (same["delta"], same["delta_lo"], same["delta_hi"], same["p_b_better"]) == (
        0.0,
        0.0,
        0.0,
        0.0,
    )
    # pairing removes the variation both systems share: the paired interval of the difference is
    # narrower than the two unpaired intervals side by side would suggest
    noisy = [
        " ".join(w for w in r.split() if rng.random() > 0.3) for r in refs
    ]  # shared hard utterances
    a2 = [n.replace("luna", "lula") if i % 2 == 0 else n for i, n in enumerate(noisy)]
    d2 = M.paired_bootstrap(refs, a2, noisy)
    sa, sn = M.score(refs, a2), M.score(refs, noisy)
    assert d2["delta_hi"] - d2["delta_lo"] < (sa.wer_ci[1] - sa.wer_ci[0]) + (
        sn.wer_ci[1] - sn.wer_ci[0]
    )
    assert d2["delta_hi"] < 0  # a real gain that the two overlapping intervals hide
    assert sa.wer_ci[0] < sn.wer_ci[1]  # the unpaired intervals overlap


def test_references_written_without_accents_are_scored_accent_folded():
    plain = ["CON LO QUE A MI ME GUSTA LA MUSICA CLASICA", "QUE MUERTO NI OCHO CUARTOS"]
    hyps = ["con lo que a mí me gusta la música clásica", "qué muerto ni ocho cuartos"]
    assert M.wer(plain, hyps) == 0.0 and M.cer(plain, hyps) == 0.0
    s = M.score(plain, hyps)
    assert s.wer == 0.0 and s.accents == "folded"
    assert M.paired_bootstrap(plain, hyps, [h.upper() for h in hyps])["wer_a"] == 0.0
    # one accented reference: the corpus writes accents, so they count (mí is not mi)
    written = ["a mí me gusta la música", "que muerto ni ocho cuartos"]
    s = M.score(written, ["a mi me gusta la musica", "que muerto ni ocho cuartos"])
    assert s.accents == "kept"
    assert s.wer == pytest.approx(
        jiwer.wer(" ".join(written), "a mi me gusta la musica que muerto ni ocho cuartos")
    )
