"""lrp_ref.table: the plain-text tables of the ledger, the relevance report and composites."""

from lrp_ref.table import format_table


def test_columns_are_as_wide_as_their_widest_cell_two_spaces_apart():
    rows = [("path", "sum"), ("0", "+1.5"), ("10.body", "-0.25")]
    # widths 7 ("10.body") and 5 ("-0.25"); the first column left, the second right
    assert format_table(rows, "<>") == [
        "path" + " " * 3 + "  " + " " * 2 + "sum",
        "0" + " " * 6 + "  " + " " + "+1.5",
        "10.body" + "  " + "-0.25",
    ]


def test_columns_default_to_the_left_and_lines_end_without_spaces():
    rows = [("a", "bb", "c"), ("aaa", "b", "cccc")]
    assert format_table(rows) == ["a    bb  c", "aaa  b   cccc"]
    assert format_table([]) == []
