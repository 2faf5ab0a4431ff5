"""Plain-text tables: the ledger, the relevance report, a composite's assignment.

A leaf module (no imports): each column is as wide as its widest cell, columns
stand two spaces apart, and no line ends in a space.
"""

from __future__ import annotations

from collections.abc import Sequence


def format_table(rows: Sequence[Sequence[str]], align: str = "") -> list[str]:
    """The lines of a table whose ``rows`` are sequences of strings (a header is a row).

    ``align`` holds one character per column, ``"<"`` (left) or ``">"`` (right);
    columns past its end are left-aligned.
    """
    if not rows:
        return []
    widths = [max(len(row[k]) for row in rows) for k in range(len(rows[0]))]
    align = align.ljust(len(widths), "<")
    return ["  ".join(cell.rjust(w) if side == ">" else cell.ljust(w)
                      for cell, w, side in zip(row, widths, align)).rstrip()
            for row in rows]
