"""Progress of long work: a tqdm bar on a terminal, plain lines in a log file or a batch job.

tqdm redraws its bar with carriage returns; written to a file (a Slurm log, ``cmd > log``) those
redraws pile up as hundreds of frames on one line. :func:`progress` returns a tqdm bar when stderr
is a terminal and a :class:`PlainProgress` otherwise, which prints at most one line per
:data:`PLAIN_EVERY_S` seconds and one at the end, in the same calls (iterate over it, ``update``,
``set_postfix``, use it as a context manager). Every long loop of the platform (CINEB and relaxation
steps, training epochs, selection rounds, embeddings, loading and cutting) shows its progress through
it.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any

from tqdm.auto import tqdm

#: least seconds between two plain progress lines
PLAIN_EVERY_S = 30.0


class PlainProgress:
    """Progress as plain lines on stderr: ``desc: 3/40 step, 62 s`` at most every ``every_s``."""

    def __init__(
        self,
        iterable: Iterable | None = None,
        total: int | None = None,
        desc: str = "",
        unit: str = "it",
        initial: int = 0,
        every_s: float | None = None,
    ) -> None:
        self.iterable = iterable
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)
        self.total, self.desc, self.unit = total, desc, unit
        self.n = initial
        self.every_s = PLAIN_EVERY_S if every_s is None else every_s
        self.postfix = ""
        self._start = self._last = time.monotonic()
        self._closed = False

    def _counts(self) -> str:
        of = f"/{self.total}" if self.total is not None else ""
        extra = f" ({self.postfix})" if self.postfix else ""
        return f"{self.n}{of} {self.unit}{extra}, {time.monotonic() - self._start:.0f} s"

    def update(self, n: int = 1) -> None:
        """Count ``n`` more; print a line when the last one is ``every_s`` old."""
        self.n += n
        now = time.monotonic()
        if n and now - self._last >= self.every_s:
            self._last = now
            print(f"{self.desc}: {self._counts()}", file=sys.stderr, flush=True)

    def set_postfix(self, **values: Any) -> None:
        """What the next line says after the counts, e.g. ``strategy=design, seed=3``."""
        self.postfix = ", ".join(f"{k}={v}" for k, v in values.items())

    def close(self) -> None:
        """The closing line (once): counts and seconds."""
        if not self._closed:
            self._closed = True
            print(f"{self.desc}: done, {self._counts()}", file=sys.stderr, flush=True)

    def __iter__(self) -> Iterator:
        for item in self.iterable or ():
            yield item
            self.update()
        self.close()

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def progress(
    iterable: Iterable | None = None,
    total: int | None = None,
    desc: str = "",
    unit: str = "it",
    show: bool = True,
    **tqdm_options: Any,
) -> tqdm | PlainProgress:
    """A progress display for a loop: tqdm on a terminal, plain lines elsewhere, nothing unless ``show``.

    ``tqdm_options`` (``leave``, ``initial``) go to tqdm; ``initial`` also to the plain lines.
    """
    if show and not sys.stderr.isatty():
        return PlainProgress(iterable, total, desc, unit, initial=tqdm_options.get("initial", 0))
    return tqdm(iterable, total=total, desc=desc, unit=unit, disable=not show, **tqdm_options)
