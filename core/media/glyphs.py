"""A tiny bitmap font for labels drawn into pictures ("+7 more", a participant's number).

5x7 glyphs for digits, ``+``, ``-``, space, the letters of ``more``, ``p`` and of
``RECONNECTING``;
:func:`render` turns a string into a boolean mask (no font files, no Pillow),
scaled by an integer factor, which callers paint onto ``yuv420p`` planes or an
RGB array with numpy.
"""

from __future__ import annotations

import numpy as np

_GLYPHS = {
    "0": ("01110", "10001", "10011", "10101", "11001", "10001", "01110"),
    "1": ("00100", "01100", "00100", "00100", "00100", "00100", "01110"),
    "2": ("01110", "10001", "00001", "00010", "00100", "01000", "11111"),
    "3": ("11110", "00001", "00001", "01110", "00001", "00001", "11110"),
    "4": ("00010", "00110", "01010", "10010", "11111", "00010", "00010"),
    "5": ("11111", "10000", "11110", "00001", "00001", "10001", "01110"),
    "6": ("00110", "01000", "10000", "11110", "10001", "10001", "01110"),
    "7": ("11111", "00001", "00010", "00100", "01000", "01000", "01000"),
    "8": ("01110", "10001", "10001", "01110", "10001", "10001", "01110"),
    "9": ("01110", "10001", "10001", "01111", "00001", "00010", "01100"),
    "+": ("00000", "00100", "00100", "11111", "00100", "00100", "00000"),
    "-": ("00000", "00000", "00000", "11111", "00000", "00000", "00000"),
    " ": ("00000",) * 7,
    "m": ("00000", "00000", "11010", "10101", "10101", "10101", "10101"),
    "o": ("00000", "00000", "01110", "10001", "10001", "10001", "01110"),
    "r": ("00000", "00000", "10110", "11001", "10000", "10000", "10000"),
    "e": ("00000", "00000", "01110", "10001", "11111", "10000", "01110"),
    "p": ("00000", "00000", "11110", "10001", "11110", "10000", "10000"),
    "C": ("01110", "10001", "10000", "10000", "10000", "10001", "01110"),
    "E": ("11111", "10000", "10000", "11110", "10000", "10000", "11111"),
    "G": ("01110", "10001", "10000", "10111", "10001", "10001", "01111"),
    "I": ("01110", "00100", "00100", "00100", "00100", "00100", "01110"),
    "N": ("10001", "11001", "10101", "10011", "10001", "10001", "10001"),
    "O": ("01110", "10001", "10001", "10001", "10001", "10001", "01110"),
    "R": ("11110", "10001", "10001", "11110", "10100", "10010", "10001"),
    "T": ("11111", "00100", "00100", "00100", "00100", "00100", "00100"),
}
#: Glyph cell size (columns, rows) before scaling, including one column of spacing.
CELL = (6, 7)


def render(text: str, scale: int = 1) -> np.ndarray:
    """A ``(7*scale, 6*scale*len(text))`` boolean mask of ``text`` (unknown characters: blank)."""
    if scale < 1:
        raise ValueError(f"scale must be >= 1, got {scale}")
    cols, rows = CELL
    mask = np.zeros((rows, cols * len(text)), bool)
    for i, ch in enumerate(text):
        glyph = _GLYPHS.get(ch, _GLYPHS[" "])
        for r, line in enumerate(glyph):
            for c, bit in enumerate(line):
                if bit == "1":
                    mask[r, i * cols + c] = True
    return np.kron(mask, np.ones((scale, scale), bool)).astype(bool)


def fit_scale(text: str, width: int, height: int) -> int:
    """The largest integer scale at which ``text`` fits ``width`` x ``height`` (at least 1)."""
    cols, rows = CELL
    return max(1, min(width // (cols * max(len(text), 1)), height // rows))
