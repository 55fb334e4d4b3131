"""mkdocs hook: the docstrings cross-reference in Sphinx roles (:func:`run_local`); the API pages
show the reference as code, without the role's name."""

from __future__ import annotations

import re
from typing import Any

_ROLE = re.compile(r":(?:func|class|meth|mod|data|attr|exc|obj):(?=<code>)")


def on_page_content(html: str, **kwargs: Any) -> str:
    """The page's HTML with ``:role:`` prefixes of inline code removed."""
    return _ROLE.sub("", html)
