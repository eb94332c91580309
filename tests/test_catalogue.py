"""The lyrics catalogue: a noisy first-pass transcript finds its copla, with rapidfuzz and with
BM25 over character n-grams; excluded coplas are not found; accuracy is counted right."""

from __future__ import annotations

import pytest

from flamenco_lib.catalogue import Catalogue, retrieval_accuracy
from flamenco_lib.data.lyrics import read_lyrics


@pytest.fixture(scope="module")
def coplas():
    return read_lyrics()  # the project's 336 coplas


@pytest.mark.parametrize("method", ["fuzzy", "bm25"])
def test_a_noisy_transcript_finds_its_copla(coplas, method):
    cat = Catalogue.from_coplas(coplas)
    target = coplas[17]
    words = target.text.replace(",", "").split()
    # as a sung first pass comes out: a quejío, a repeated verse, a word lost, one misheard
    noisy = "ay ay " + " ".join(words[:4] + words[:4] + words[5:])
    noisy = noisy.replace(words[-1], words[-1][:-1] + "x")
    hits = cat.search(noisy, k=5, method=method)
    assert hits[0][0] == target.id, hits
    assert [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)
    cut = Catalogue.from_coplas(coplas, exclude=[target.id])  # a singer of new lyrics
    assert len(cut) == len(cat) - 1 and target.id not in [i for i, _ in cut.search(noisy)]


def test_retrieval_accuracy_counts_top1_and_topk(coplas):
    cat = Catalogue.from_coplas(coplas[:50])
    queries = [c.text for c in coplas[:4]] + ["nada que ver con nada"]
    truth = [c.id for c in coplas[:4]] + [coplas[1].id]
    acc = retrieval_accuracy(cat, queries, truth, k=5, method="fuzzy")
    assert acc["n"] == 5 and acc["top1"] == pytest.approx(4 / 5)
    missing = retrieval_accuracy(cat, [coplas[60].text], [coplas[60].id])
    assert missing["n"] == 0  # a copla not in the catalogue is not counted against it
    with pytest.raises(ValueError, match="use one of fuzzy, bm25"):
        cat.search("hola", method="tfidf")


def test_one_sung_line_finds_the_copla_it_is_part_of():
    # every word of the line is in both coplas, but only the second sings it as a line: a
    # word-set match ties them (the first would win), the best-matching piece does not
    cat = Catalogue(
        ["scattered", "sung"],
        [
            "No te quiere la luna, que pena de mi alma",
            "Y la luna me dijo, que no te quiere, que no",
        ],
    )
    hits = cat.search("que no te quiere", k=2, method="fuzzy")
    assert hits[0][0] == "sung" and hits[0][1] > hits[1][1], hits
