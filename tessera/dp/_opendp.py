"""OpenDP, reached only when a mechanism is built, with its features enabled explicitly.

``opendp.prelude`` imports OpenDP's scikit-learn extras (about a second per process, paid by
every party process of every job, DP or not), so Tessera imports only the core modules it
uses (``opendp.measurements``, ``domains``, ``metrics``, ``combinators``), and only inside the
functions that build a measurement. The "contrib" features (the discrete Gaussian and Laplace
constructors and the zCDP conversion) are enabled by :func:`contrib` at those calls, never as
an import side effect.
"""

from __future__ import annotations

__all__ = ["contrib"]


def contrib() -> None:
    """Enable OpenDP's ``contrib`` features (idempotent); call it before building a measurement."""
    from opendp.mod import enable_features

    enable_features("contrib")
