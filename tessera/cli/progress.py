"""A job's progress on the terminal: a rich progress bar (stage text, fraction, elapsed time) on
stderr, so stdout keeps only the results. On a stream that is not a terminal (logs, pipes,
tests) each new stage is one line instead: ``progress  42%  Newton iteration 3 of 8``.

Used by ``tessera run`` (``run_local(progress=...)``) and ``tessera job wait`` / ``job submit
--wait`` (the node's job view, :func:`JobProgress.job`).
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TaskProgressColumn, TextColumn, TimeElapsedColumn

__all__ = ["JobProgress"]


class JobProgress:
    """A progress bar for one job; :meth:`update` takes ``(fraction, stage)`` (thread-safe: rich
    serialises updates), :meth:`job` a node's job view."""

    def __init__(self, title: str, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.title = title
        self.live = self.console.is_terminal
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._said: tuple[int, str] | None = None
        self.fraction = 0.0

    def __enter__(self) -> JobProgress:
        if self.live:
            self._progress = Progress(TextColumn("[bold]{task.fields[title]}"), BarColumn(), TaskProgressColumn(),
                                      TextColumn("{task.description}"), TimeElapsedColumn(), console=self.console,
                                      transient=False)
            self._progress.start()
            self._task = self._progress.add_task("starting", total=1.0, title=self.title)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._progress is not None:
            self._progress.stop()

    def update(self, fraction: float, stage: str) -> None:
        """Show the job at ``fraction`` (0..1) and ``stage``."""
        f = min(1.0, max(0.0, float(fraction)))
        self.fraction = f
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, completed=f, description=stage)
            return
        said = (round(f * 100), stage)
        if said[1] != (self._said[1] if self._said else None) or (f >= 1.0 and said != self._said):
            self._said = said
            self.console.print(f"progress {said[0]:>4}%  {stage}", markup=False, highlight=False, soft_wrap=True)

    def job(self, view: dict[str, Any]) -> None:
        """Show a node's job view: its fraction, and its state with the progress detail."""
        p = view.get("progress") or {}
        frac = p.get("fraction")
        detail = p.get("stage") or p.get("detail") or ""
        state = str(view.get("state", ""))
        if state in ("denied", "failed", "aborted", "cancelled"):  # not done: the bar stays where it was
            reasons = "; ".join(str(r) for r in view.get("reasons") or [])
            self.update(self.fraction, f"{state}" + (f": {reasons}" if reasons else ""))
            return
        text = state.replace("_", " ") + (f": {detail}" if detail and detail != state else "")
        self.update(float(frac) if isinstance(frac, (int, float)) else 0.0, text)
