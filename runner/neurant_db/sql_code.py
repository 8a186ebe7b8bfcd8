"""SQL text reduced to its code, for checks that read function bodies."""

from __future__ import annotations

import re


def code_only(src: str) -> str:
    """The body without comments and string literals (dollar-quoted strings included)."""
    src = re.sub(r"--[^\n]*", " ", src)
    src = re.sub(r"/\*.*?\*/", " ", src, flags=re.S)
    src = re.sub(r"\$([a-z_]*)\$.*?\$\1\$", " '' ", src, flags=re.S | re.I)
    return re.sub(r"'(?:[^']|'')*'", "''", src)
