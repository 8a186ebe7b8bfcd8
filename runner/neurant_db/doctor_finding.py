"""One finding of `neurant-db doctor`: the shape every check (doctor.py, doctor_citus.py) yields."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Finding:
    level: str  # error | warning | info
    check: str
    object: str
    message: str
    hint: str = ""  # the fix, as a sentence (the Citus rules give one)

    def as_dict(self) -> dict[str, str]:
        out = asdict(self)
        if not self.hint:
            del out["hint"]
        return out
