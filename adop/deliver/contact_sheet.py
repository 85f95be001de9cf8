"""A contact sheet: evenly sampled frames of the LDR sequence in a grid, each labelled with its frame number.

Supervisors judge a fly-through from one image before opening the movie. Labels are drawn with OpenImageIO's
``render_text`` and the DroidSans font that ships inside the OpenImageIO wheel; where no
font can be found the sheet is still written, unlabelled, and the frame numbers remain in the returned record (and
so in ``delivery.json``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import OpenImageIO as oiio

from adop.deliver.frames import parse_frame_name
from adop.images import read_image, write_png
from adop.errors import InputError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ContactSheet:
    """The written sheet and what is on it.

    Attributes:
        path: the PNG file.
        frame_numbers: frame numbers of the tiles, left to right, top to bottom.
        labelled: whether the numbers are drawn on the sheet (False if no font was available).
    """

    path: Path
    frame_numbers: tuple[int, ...]
    labelled: bool


def _resize(pixels: np.ndarray, width: int, height: int) -> np.ndarray:
    """Area-average by the integer factor first (cheap in numpy), then filter-resize the small image to size.

    Filtering a 1080p frame straight down to a tile costs over a second per tile; the box pre-shrink makes the
    whole sheet take well under a second and looks the same at tile size.
    """
    f = max(1, min(pixels.shape[1] // width, pixels.shape[0] // height))
    if f > 1:
        h, w = (pixels.shape[0] // f) * f, (pixels.shape[1] // f) * f
        c = pixels.shape[2]
        rows = pixels[:h, :w].astype(np.float32).reshape(h // f, f, w, c).sum(axis=1)  # contiguous reductions
        pixels = rows.reshape(h // f, w // f, f, c).sum(axis=2) / (f * f)
    src = oiio.ImageBuf(np.ascontiguousarray(pixels, dtype=np.float32) / 255.0)
    dst = oiio.ImageBufAlgo.resize(src, roi=oiio.ROI(0, width, 0, height, 0, 1, 0, pixels.shape[2]))
    return dst.get_pixels(oiio.FLOAT)


def make_contact_sheet(
    frames: Sequence[str | os.PathLike[str]],
    output: str | os.PathLike[str],
    *,
    columns: int = 4,
    max_tiles: int = 16,
    tile_width: int = 320,
    label_height: int = 24,
) -> ContactSheet:
    """Write a grid of up to ``max_tiles`` evenly spaced frames (first and last included), labelled, as a PNG.

    Args:
        frames: the LDR frames (``name.1001.png`` …; any order, sorted by frame number here).
        output: the sheet's file name (written atomically).
        columns: tiles per row.
        max_tiles: how many frames to sample.
        tile_width: width of each tile in pixels; the height keeps the frames' aspect ratio.
        label_height: height of the strip under each tile that holds its frame number.

    Raises:
        InputError: no frames, or frame names without numbers.
    """
    if not frames:
        raise InputError("no frames for the contact sheet; render the sequence first")
    if columns < 1 or max_tiles < 1 or tile_width < 8:
        raise InputError(
            f"contact sheet needs columns >= 1, max_tiles >= 1, tile_width >= 8; got "
            f"{columns}, {max_tiles}, {tile_width}"
        )
    ordered = sorted((parse_frame_name(f)[1], Path(f)) for f in frames)
    pick = np.unique(np.round(np.linspace(0, len(ordered) - 1, min(max_tiles, len(ordered)))).astype(int))
    chosen = [ordered[i] for i in pick]
    first = read_image(chosen[0][1])
    tile_h = max(1, round(tile_width * first.shape[0] / first.shape[1]))
    cols = min(columns, len(chosen))
    rows = -(-len(chosen) // cols)
    gap = 4
    cell_w, cell_h = tile_width + gap, tile_h + label_height + gap
    sheet = np.full((rows * cell_h + gap, cols * cell_w + gap, 3), 0.08, dtype=np.float32)
    for k, (_, file) in enumerate(chosen):
        pixels = read_image(file)
        if pixels.shape[2] == 1:
            pixels = np.repeat(pixels, 3, axis=2)
        tile = _resize(pixels[:, :, :3], tile_width, tile_h)
        y, x = gap + (k // cols) * cell_h, gap + (k % cols) * cell_w
        sheet[y : y + tile_h, x : x + tile_width] = tile
    buf = oiio.ImageBuf(sheet)
    labelled = True
    for k, (number, _) in enumerate(chosen):
        y, x = gap + (k // cols) * cell_h + tile_h, gap + (k % cols) * cell_w
        ok = oiio.ImageBufAlgo.render_text(
            buf, x + 4, y + label_height - 6, str(number), label_height - 8, "", (0.9, 0.9, 0.9)
        )
        if not ok:
            labelled = False
            logger.warning(
                "contact sheet: cannot draw text (%s); frame numbers are listed in the manifest only", oiio.geterror()
            )
            break
    out = write_png(output, buf.get_pixels(oiio.FLOAT) if labelled else sheet)
    return ContactSheet(out, tuple(n for n, _ in chosen), labelled)
