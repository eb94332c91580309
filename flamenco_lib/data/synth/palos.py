"""Palos: a palo's canonical name, its compás and its mode."""

from __future__ import annotations

import unicodedata

from .settings import COMPAS, DEFAULT_COMPAS, PALO_MODE


def _fold(text: str) -> str:
    return "".join(
        c
        for c in unicodedata.normalize("NFD", text.strip().lower())
        if unicodedata.category(c) != "Mn"
    )


_PALO_BY_FOLDED = {_fold(p): p for p in COMPAS}


def palo_key(palo: str) -> str:
    """The palo's name as in :data:`COMPAS` ("Solea" -> "soleá"); unknown names lowercased."""
    return _PALO_BY_FOLDED.get(_fold(palo), palo.strip().lower())


def compas(palo: str) -> tuple[int, tuple[int, ...]]:
    """(beats per cycle, accented beats) of a palo; :data:`DEFAULT_COMPAS` when unknown."""
    return COMPAS.get(palo_key(palo), DEFAULT_COMPAS)


def palo_mode(palo: str) -> str:
    """The mode of the palo's melody and chords: "phrygian", "major" or "minor"."""
    return PALO_MODE.get(palo_key(palo), "phrygian")
