"""One endpoint process of a diagnostics or benchmark session: join the mesh, run a named program.

    python -m tessera.runtime.party CONFIG.json      (what ``tessera party run`` calls)

The config names a party program inside Tessera (``tessera.runtime.diagnostics:selftest``,
``tessera.runtime.workloads:mul``, ...). Jobs do not come this way: a job's party process is
``python -m tessera.jobs.party`` with a typed job. Writes a :class:`~tessera.runtime.launcher.ProcessReport`
to the config's ``result_path`` and exits 0 on success, 1 on failure.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any

from tessera.errors import SessionError
from tessera.mpc.session import Session
from tessera.runtime.config import PROGRAM_PREFIX, PartyConfig
from tessera.runtime.launcher import Failure, ProcessReport, serve, write_report

__all__ = ["main", "load_program"]


def load_program(ref: str) -> Callable[..., Any]:
    """The function named ``tessera.module:function`` (only inside the tessera package)."""
    module, _, func = ref.partition(":")
    if not module.startswith(PROGRAM_PREFIX) or not func:
        raise SessionError(f"program {ref!r} must be 'module:function' inside the tessera package")
    try:
        fn: Callable[..., Any] = getattr(importlib.import_module(module), func)
    except (ImportError, AttributeError):
        raise SessionError(f"no party program {ref!r}") from None
    return fn


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m tessera.runtime.party CONFIG.json", file=sys.stderr)
        return 2
    cfg = PartyConfig.load(args[0])
    program: Callable[[Session], Any] | None = None
    try:
        if not cfg.is_dealer:
            fn, kwargs = load_program(cfg.program or ""), cfg.args
            program = lambda s: fn(s, **kwargs)  # noqa: E731
    except SessionError as e:
        report = ProcessReport(party=cfg.name, ok=False, failure=Failure.of(e))
    else:
        report = serve(cfg, program)
    if cfg.result_path:
        write_report(report, cfg.result_path)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
