"""One finding of `neurant-db doctor`: the shape every check (doctor.py, doctor_citus.py) yields,
and the reason an object's COMMENT gives for an exception (`doctor: allow <check> <reason>`)."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass


def allowed_reason(check: str, note: str) -> str | None:
    """The reason `note` (an object's COMMENT) gives for exception `check`: the text after
    `doctor: allow <check>` up to the next `doctor:` note or the end, without its final
    period; None when it gives none."""
    found = re.search(r"doctor: allow " + re.escape(check) + r"\b[:\s]*(.*?)(?= doctor: |$)", note, re.DOTALL)
    return found.group(1).strip().rstrip(".") if found else None


@dataclass(frozen=True)
class Finding:
    level: str  # error | warning | info
    check: str
    object: str
    message: str
    hint: str = ""  # the fix, as a sentence (the Citus rules give one)
    query: str = ""  # the query that shows it (doctor --data, doctor_data.py)

    def as_dict(self) -> dict[str, str]:
        out = asdict(self)
        for optional in ("hint", "query"):
            if not out[optional]:
                del out[optional]
        return out
