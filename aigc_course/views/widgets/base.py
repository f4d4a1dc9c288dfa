"""What every live explorer shares: display, the status line, timing, error reporting, and PNG helpers.

An explorer is a few ipywidgets controls over a model; every change of a
control redraws one or two images from the model, on the fly. Images go to the
browser as small PNGs made with PIL (a few milliseconds), not as Matplotlib
figures (hundreds).

A subclass builds its controls, then calls ``self._show(*rows)``, which lays
the rows out above the status line and draws the first frame. It implements
``draw()``: redraw for the controls' current values and return the status
text; :meth:`Explorer.update` times it and appends the time to that text
("z = (+0.50, -1.00) &nbsp; decode + draw: 3.1 ms"). When an update fails after
the explorer is on screen, the status line shows the error instead: an
exception raised in a widget callback would otherwise go to a log the learner
never sees, and the view would silently stop changing.
"""
from __future__ import annotations

import html
import io
import logging
import time
from typing import Callable

import numpy as np
import torch
from PIL import Image

from aigc_course.core.i18n import tr

log = logging.getLogger(__name__)

ERROR_COLOUR = "#c44e52"


# --------------------------------------------------------------------------- images as PNG bytes

def png_bytes(array: np.ndarray) -> bytes:
    """Encode a uint8 (H, W) or (H, W, 3) array as PNG bytes."""
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def _uint8(images: torch.Tensor | np.ndarray) -> np.ndarray:
    """Grey values in [0, 1] -> uint8 0..255 (rounded, clipped)."""
    if torch.is_tensor(images):
        images = images.detach().cpu().numpy()
    return np.rint(np.clip(images, 0, 1) * 255).astype(np.uint8)


def enlarged_png(array: np.ndarray, width: int, height: int | None = None) -> bytes:
    """A uint8 image enlarged to ``width`` x ``height`` pixels with nearest-neighbour (crisp pixels), as PNG."""
    img = Image.fromarray(array).resize((width, height or width), Image.NEAREST)
    return png_bytes(np.asarray(img))


def digit_png(image: torch.Tensor, size: int = 196) -> bytes:
    """A (1, 28, 28) or (28, 28) grey image in [0, 1] as a ``size`` x ``size`` PNG."""
    return enlarged_png(_uint8(image.reshape(28, 28)), size)


def grid_png(images: torch.Tensor, nrow: int, scale: int = 3) -> bytes:
    """Images (N, 1, 28, 28) in [0, 1] as one PNG grid, each pixel ``scale`` x ``scale``."""
    from aigc_course.views.plots import grid_array

    grid = _uint8(grid_array(images, nrow=nrow))
    return enlarged_png(grid, grid.shape[1] * scale, grid.shape[0] * scale)


def to_pixels(z: np.ndarray, span: float, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Points (N, 2) of the square [-span, span]^2 -> (columns, rows) of a size x size image; y grows upwards."""
    z = np.atleast_2d(z)
    cols = np.floor((z[:, 0] + span) / (2 * span) * size).astype(int)
    rows = np.floor((span - z[:, 1]) / (2 * span) * size).astype(int)
    return cols, rows


# --------------------------------------------------------------------------- the explorer base class

def error_html(error: BaseException) -> str:
    """The status line for a failed update: a ValueError's own message (ours name the fix), else its type too."""
    text = str(error) if isinstance(error, ValueError) else f"{type(error).__name__}: {error}"
    note = tr("(this view was not updated; <code>explorer.last_error</code> holds the traceback)")
    return f'<span class="explorer-error" style="color:{ERROR_COLOUR}">&#9888; {html.escape(text)} {note}</span>'


class Explorer:
    """Base of every explorer: owns the widget box, the status line, timing and error reporting.

    Attributes every explorer has: ``widget`` (the ``VBox`` to display; its last
    child is ``status``, an HTML line), ``last_update_ms`` (wall time of the
    latest ``update``), ``last_error`` (the exception of the latest failed
    action, or None). Leave an explorer last in a cell, or ``display(explorer)``.
    """

    timing_label = "draw"  # what one update does, in English; the status line reads "<text> &nbsp; draw: 3.1 ms"
    in_seconds = False     # show times as "3.2 s" (for updates that take seconds) instead of "3.1 ms"

    def __init__(self) -> None:
        import ipywidgets as w

        self.status = w.HTML()
        self.last_update_ms = 0.0
        self.last_error: BaseException | None = None
        self._live = False  # False while building: errors raise, so a bad model fails in the cell that made it

    # ---- what a subclass provides
    def draw(self) -> str:
        """Redraw for the controls' current values; return the status text (the time is appended)."""
        raise NotImplementedError

    # ---- what the base does
    def _show(self, *rows, first: Callable[[], object] | None = None) -> None:
        """Lay ``rows`` out above the status line as ``self.widget``, then draw the first frame (``first``,
        default ``update``). From then on, errors in updates go to the status line."""
        import ipywidgets as w

        self.widget = w.VBox([*rows, self.status])
        (first or self.update)()
        self._live = True

    def _redraw_on(self, *controls) -> None:
        """Call ``update`` whenever one of ``controls`` changes its value."""
        for control in controls:
            control.observe(lambda _change: self.update(), names="value")

    def timing_text(self) -> str:
        """``timing_label`` in the current language (every subclass's label is in the message table)."""
        return tr(self.timing_label)

    def format_time(self, ms: float) -> str:
        return f"{ms / 1000:.1f} s" if self.in_seconds else f"{ms:.1f} ms"

    def _timed(self, action: Callable[[], str | None], label: str | None = None) -> float:
        """Run ``action`` and return its wall time in milliseconds.

        If it returns text, the status line shows it, followed by "label: time" when ``label`` is
        given. If it raises once the explorer is on screen, the status line shows the error (and
        ``last_error`` keeps it); while the explorer is being built, the error propagates.
        """
        start = time.perf_counter()
        try:
            text = action()
        except Exception as error:
            if not self._live:
                raise
            self.last_error = error
            self.status.value = error_html(error)
            if isinstance(error, ValueError):  # a choice the controls allow but the model cannot draw
                log.info("%s: %s", type(self).__name__, error)
            else:
                log.warning("%s: update failed", type(self).__name__, exc_info=error)
            return (time.perf_counter() - start) * 1000
        ms = (time.perf_counter() - start) * 1000
        self.last_error = None
        if text is not None:
            self.status.value = f"{text} &nbsp; {label}: {self.format_time(ms)}" if label else text
        return ms

    def update(self) -> float:
        """Redraw for the controls' current values; return the time it took in milliseconds."""
        self.last_update_ms = self._timed(self.draw, self.timing_text())
        return self.last_update_ms

    def _then_update(self, change: Callable[[], None]) -> float:
        """Apply ``change`` to the explorer's state (a new seed, a sampled token), then redraw;
        an error in either shows in the status line. Returns the redraw's milliseconds."""
        self._timed(change)
        return self.update() if self.last_error is None else self.last_update_ms

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)
