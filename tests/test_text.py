"""flamenco_lib.text: Whisper's basic normaliser (cross-checked with transformers) + Spanish."""

import pytest
from transformers.models.whisper.english_normalizer import BasicTextNormalizer

from flamenco_lib.text import fold_accents, normalize, normalize_flamenco

# Cases where Whisper's basic normaliser and ours must agree exactly (no elision apostrophes).
AGREE = [
    "Hola, ¿qué tal?",
    "¡Olé! Eso es cante.",
    "La SOLEÁ de Triana [música] suena (risas) así",
    "«Fatigas» — dijo la gitana…",
    "Canción número 3: el 25 de mayo",
    "  espacios   de   más  ",
    "Pingüino, corazón, niño",
    "<|es|> mare mía",
]


@pytest.mark.parametrize("text", AGREE)
def test_agrees_with_whisper_basic_normalizer(text):
    assert normalize(text) == BasicTextNormalizer()(text).strip()


@pytest.mark.parametrize(
    "text,expected",
    [
        ("¿Dónde vas, gitana?", "dónde vas gitana"),
        ("Pa'l puerto me voy", "pal puerto me voy"),
        ("mi mare, pa' ti", "mi mare pa ti"),
        ("'tá llorando", "tá llorando"),
        ("Camarón—de—la—Isla", "camarón de la isla"),
        ("¡¡AY!!", "ay"),
    ],
)
def test_spanish_cases(text, expected):
    assert normalize(text) == expected


def test_fold_accents_keeps_enye():
    assert fold_accents("Canción, pingüino, España, Ñandú") == "Cancion, pinguino, España, Ñandu"
    assert (
        normalize("La Niña de los Peines, ¡qué canción!", keep_accents=False)
        == "la niña de los peines que cancion"
    )


def test_flamenco_variant():
    assert normalize_flamenco("¡Ay! Mi mare, ay, tó lo que tengo") == "mi madre todo lo que tengo"
    assert normalize_flamenco("Ay ay ay") == ""
    assert normalize_flamenco("Pa mi verdá") == "para mi verdad"
