"""Table 1 of Szegedy et al. (2015), "Going deeper with convolutions", as data.

This module is the project's single source of truth for the paper's numbers. The model builds its Inception
blocks from :data:`INCEPTION_SPECS`, the book prints :data:`TABLE1`, and the tests compare measurements with both.

The published values are kept exactly as printed, errata included. Two conventions of the paper matter:

* In the "params" column, "K" means 1024 (so "159K" is 159 × 1024 weights).
* The "ops" column counts multiply-adds (MACs), with M = 10^6.

Where the printed numbers cannot be right, :attr:`Table1Row.note` says why. The book's chapter on the network
derives each erratum from the channel numbers (see :func:`gnet.analysis.table1_comparison`).
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["InceptionSpec", "Table1Row", "TABLE1", "INCEPTION_SPECS", "PAPER_DEPTH", "PAPER_K", "WIDTH_FIELDS"]

#: The paper's "K" in the params column.
PAPER_K = 1024


class InceptionSpec(NamedTuple):
    """Channel numbers of one Inception block: its input, then the six widths under Table 1's column names.

    These six names are the only names gnet uses for the widths, from :class:`Table1Row` to the book's explorer.
    ``gnet.Inception.from_spec`` builds the block; :class:`gnet.Inception`'s own arguments follow the source
    text's ``c1, c2=(reduce, out), c3=(reduce, out), c4``.
    """

    in_channels: int
    n1x1: int  # branch 1: 1×1 convolution
    n3x3_reduce: int  # branch 2: 1×1 reduction before the 3×3
    n3x3: int  # branch 2: the 3×3 convolution
    n5x5_reduce: int  # branch 3: 1×1 reduction before the 5×5
    n5x5: int  # branch 3: the 5×5 convolution
    pool_proj: int  # branch 4: 1×1 projection after the 3×3 max pool

    @property
    def out_channels(self) -> int:
        return self.n1x1 + self.n3x3 + self.n5x5 + self.pool_proj

    def source_args(self) -> tuple[int, int, tuple[int, int], tuple[int, int], int]:
        """The widths in the source text's argument order, ``(in_channels, c1, c2, c3, c4)`` with ``c2`` and
        ``c3`` as ``(reduce, out)`` pairs: the one translation between Table 1's names and that order."""
        return (
            self.in_channels,
            self.n1x1,
            (self.n3x3_reduce, self.n3x3),
            (self.n5x5_reduce, self.n5x5),
            self.pool_proj,
        )


class Table1Row(NamedTuple):
    """One row of Table 1, verbatim. Empty cells are ``None``.

    ``paper_params`` is in weights (the printed "K" already multiplied by 1024) and ``paper_macs`` in
    multiply-adds (the printed "M" multiplied by 10^6), so both compare directly with measurements.
    """

    name: str  # our module name, e.g. "conv1", "maxpool1", "inception3a", "fc"
    type: str  # the paper's "type" column
    patch_stride: str | None  # e.g. "7×7/2"
    output: tuple[int, int, int]  # (height, width, channels)
    depth: int
    n1x1: int | None = None
    n3x3_reduce: int | None = None
    n3x3: int | None = None
    n5x5_reduce: int | None = None
    n5x5: int | None = None
    pool_proj: int | None = None
    paper_params: float | None = None
    paper_macs: float | None = None
    note: str = ""


def _k(thousands: float) -> float:
    return thousands * PAPER_K


def _m(millions: float) -> float:
    return millions * 1e6


#: Table 1 as published, top to bottom.
TABLE1: tuple[Table1Row, ...] = (
    Table1Row(
        "conv1", "convolution", "7×7/2", (112, 112, 64), 1,
        paper_params=_k(2.7), paper_macs=_m(34),
        note="2.7K and 34M agree with each other (2.7K × 112² ≈ 34.7M) but fit no input: RGB gives 7·7·3·64 = 9,408 weights and 118M MACs; even one channel gives 3,136 and 39M.",
    ),
    Table1Row("maxpool1", "max pool", "3×3/2", (56, 56, 64), 0),
    Table1Row(
        "conv2+conv3", "convolution", "3×3/1", (56, 56, 192), 2, n3x3_reduce=64, n3x3=192,
        paper_params=_k(112), paper_macs=_m(360),
        note="Two layers: a 1×1 with 64 filters, then the 3×3 with 192.",
    ),
    Table1Row("maxpool2", "max pool", "3×3/2", (28, 28, 192), 0),
    Table1Row("inception3a", "inception (3a)", None, (28, 28, 256), 2, 64, 96, 128, 16, 32, 32, _k(159), _m(128)),
    Table1Row("inception3b", "inception (3b)", None, (28, 28, 480), 2, 128, 128, 192, 32, 96, 64, _k(380), _m(304)),
    Table1Row("maxpool3", "max pool", "3×3/2", (14, 14, 480), 0),
    Table1Row("inception4a", "inception (4a)", None, (14, 14, 512), 2, 192, 96, 208, 16, 48, 64, _k(364), _m(73)),
    Table1Row("inception4b", "inception (4b)", None, (14, 14, 512), 2, 160, 112, 224, 24, 64, 64, _k(437), _m(88)),
    Table1Row(
        "inception4c", "inception (4c)", None, (14, 14, 512), 2, 128, 128, 256, 24, 64, 64, _k(463), _m(100),
        note="The channel numbers give 509,440 weights (497.5K); the printed 463K does not follow from them.",
    ),
    Table1Row("inception4d", "inception (4d)", None, (14, 14, 528), 2, 112, 144, 288, 32, 64, 64, _k(580), _m(119)),
    Table1Row(
        "inception4e", "inception (4e)", None, (14, 14, 832), 2, 256, 160, 320, 32, 128, 128, _k(840), _m(170)
    ),
    Table1Row("maxpool4", "max pool", "3×3/2", (7, 7, 832), 0),
    Table1Row(
        "inception5a", "inception (5a)", None, (7, 7, 832), 2, 256, 160, 320, 32, 128, 128, _k(1072), _m(54),
        note="The channel numbers give 51.1M MACs at 7×7; the printed 54M does not follow from them.",
    ),
    Table1Row(
        "inception5b", "inception (5b)", None, (7, 7, 1024), 2, 384, 192, 384, 48, 128, 128, _k(1388), _m(71)
    ),
    Table1Row("avgpool", "avg pool", "7×7/1", (1, 1, 1024), 0),
    Table1Row("dropout", "dropout (40%)", None, (1, 1, 1024), 0),
    Table1Row("fc", "linear", None, (1, 1, 1000), 1, paper_params=_k(1000), paper_macs=_m(1)),
    Table1Row("softmax", "softmax", None, (1, 1, 1000), 0),
)  # fmt: skip


def _inception_specs() -> dict[str, InceptionSpec]:
    """Derive each block's spec from the table; a block's input is the previous row's output depth."""
    specs: dict[str, InceptionSpec] = {}
    previous_channels = None
    for row in TABLE1:
        if row.name.startswith("inception"):
            spec = InceptionSpec(
                previous_channels, row.n1x1, row.n3x3_reduce, row.n3x3, row.n5x5_reduce, row.n5x5, row.pool_proj
            )
            # The table is internally consistent here: the branch widths add up to the printed output depth.
            if spec.out_channels != row.output[2]:
                raise AssertionError(f"Table 1 row {row.name} does not add up")  # pragma: no cover
            specs[row.name] = spec
        previous_channels = row.output[2]
    return specs


#: Paper channel numbers of the nine Inception blocks, keyed by module name ("inception3a" … "inception5b").
INCEPTION_SPECS: dict[str, InceptionSpec] = _inception_specs()


#: The six widths of an Inception block, in Table 1's column order (the fields of :class:`InceptionSpec`).
WIDTH_FIELDS: tuple[str, ...] = InceptionSpec._fields[1:]


def _paper_depths() -> dict[str, int]:
    """Depth of each stage's output, counting layers with parameters as the paper does.

    Read from Table 1's "depth" column: 1 for a convolution, 2 for the 1×1 + 3×3 pair (our ``conv2`` and
    ``conv3``) and for each Inception block, 1 for the classifier; 22 in all.
    """
    depths: dict[str, int] = {}
    depth = 0
    for row in TABLE1:
        if row.depth == 0:
            continue
        names = row.name.split("+")  # "conv2+conv3": one row, two layers of depth 1 each
        for name in names:
            depth += row.depth // len(names)
            depths[name] = depth
    return depths


#: Paper depth of each main-path stage with parameters (``conv1``: 1 … ``fc``: 22), from Table 1's depth column.
PAPER_DEPTH: dict[str, int] = _paper_depths()
