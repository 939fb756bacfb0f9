"""Tables of `binome report` that fit the terminal (issue 24): at 80 columns, the
width of a pipe, no campaign name or figure is ever cut ("99.…").

A table has label columns (channel, campaign, site...: text that may wrap,
character by character if need be) and figure columns (numbers, printed whole).
Every column gets a fixed width, so rich never shrinks one past its content:
  1. figures on one line each, every figure column in one table, when that fits;
  2. else each figure's optional breaks (BREAK) turned into line breaks, when
     that fits in fewer tables;
  3. the figure columns split between as many tables as needed, each repeating
     the labels ("(continued)").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.table import Table
from rich.text import Text

# In a figure's text, where a line may break when the table is too wide for one
# line ("2,140 ms" BREAK "(12,345)"): a private-use character (rich drops control
# characters from a Text). Figures are written by the report, never taken from
# the data, so none holds one of its own.
BREAK = "\ue000"
# A label column is narrowed to this at the least while figures need the room;
# a longer name then wraps over several lines.
LABEL_MIN = 12
# rich's box: one border per column plus one, and a space each side of a cell.
_BORDER, _PADDING = 1, 2


@dataclass
class Row:
    labels: Sequence[Text]
    figures: Sequence[Text]
    style: str | None = None


def _lines(text: Text) -> list[Text]:
    return list(text.split("\n", allow_blank=True))


def _width(text: Text) -> int:
    return max((line.cell_len for line in _lines(text)), default=0)


def _longest_word(text: str) -> int:
    return max((len(word) for word in text.split()), default=0)


def _shaped(text: Text, *, stacked: bool) -> Text:
    return Text("\n" if stacked else " ").join(text.split(BREAK, allow_blank=True))


def _table_width(widths: Sequence[int]) -> int:
    return sum(widths) + (_PADDING + _BORDER) * len(widths) + _BORDER


def _groups(label_min: list[int], figure_widths: list[int], width: int) -> list[list[int]]:
    """Figure columns (by index) packed in order into tables that fit `width`."""
    groups: list[list[int]] = [[]]
    for index, figure in enumerate(figure_widths):
        current = groups[-1]
        if current and _table_width(
                label_min + [figure_widths[i] for i in current] + [figure]) > width:
            groups.append([index])
        else:
            current.append(index)
    return groups


@dataclass
class _Plan:
    figures: list[int]  # widths
    labels: list[int]  # narrowest widths
    groups: list[list[int]]  # figure columns of each table
    fits: bool
    headers_cut: bool  # a label column narrower than its header's words

    @property
    def rank(self) -> tuple[bool, bool, int, int]:
        """Fitting first, then whole headers, then fewer tables, then wider labels."""
        return not self.fits, self.headers_cut, len(self.groups), -sum(self.labels)


def fit(title: str | Text, labels: Sequence[str], figures: Sequence[str], rows: Sequence[Row],
        width: int) -> list[Table]:
    """The tables showing `rows` within `width` columns (see the module's docstring)."""
    title_text = title if isinstance(title, Text) else Text(title)
    label_natural = [max([_longest_word(header)] + [_width(row.labels[i]) for row in rows])
                     for i, header in enumerate(labels)]
    label_min = [min(natural, LABEL_MIN) for natural in label_natural]
    header_min = [_longest_word(header) for header in labels]

    def figure_widths(stacked: bool) -> list[int]:
        return [max([_longest_word(header)]
                    + [_width(_shaped(row.figures[i], stacked=stacked)) for row in rows])
                for i, header in enumerate(figures)]

    def plan(figure_widths: list[int]) -> _Plan:
        labels = list(label_min)
        widest = max(figure_widths, default=0)
        # A terminal too narrow for the labels beside the widest figure: labels
        # shrink further, down to their header's longest word, then to 4
        # characters; figures never.
        for floor in (header_min, [4] * len(labels)):
            while _table_width(labels + [widest]) > width:
                narrower = [i for i, w in enumerate(labels) if w > floor[i]]
                if not narrower:
                    break
                labels[max(narrower, key=lambda i: labels[i])] -= 1
        return _Plan(figure_widths, labels, _groups(labels, figure_widths, width),
                     _table_width(labels + [widest]) <= width,
                     any(w < h for w, h in zip(labels, header_min, strict=True)))

    wide, stacked = plan(figure_widths(False)), plan(figure_widths(True))
    use_stacked = stacked.rank < wide.rank
    chosen = stacked if use_stacked else wide
    widths, groups = chosen.figures, chosen.groups

    tables = []
    for number, group in enumerate(groups):
        # Labels take what the figures leave, up to their longest value.
        label_widths = list(chosen.labels)
        room = width - _table_width(label_widths + [widths[i] for i in group])
        for i, natural in enumerate(label_natural):
            grow = max(0, min(room, natural - label_widths[i]))
            label_widths[i] += grow
            room -= grow
        table = Table(title=title_text if number == 0 else Text(f"{title_text.plain} (continued)"),
                      title_justify="left")
        for header, column_width in zip(labels, label_widths, strict=True):
            table.add_column(header, justify="left", width=column_width, overflow="fold")
        for i in group:
            table.add_column(figures[i], justify="right", width=widths[i], overflow="fold")
        for row in rows:
            table.add_row(*row.labels,
                          *(_shaped(row.figures[i], stacked=use_stacked) for i in group),
                          style=row.style)
        tables.append(table)
    return tables
