"""The index of business rules: docs/rules.toml (written by hand, the one list of
rules) rendered as docs/rules.md (rule -> enforcing objects and files -> the test
file that proves it), and the checks that keep the list honest: every file exists,
every enforcing object is named in its file, and every proving test file names the
rule it proves (`rule: <id> (docs/rules.md)`, where the proof is)."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

RULES_SOURCE = "docs/rules.toml"
RULES_INDEX = "docs/rules.md"
DOMAINS = {
    "tenancy": "Platform and tenancy (domain 0)",
    "chatbots": "Chatbots and conversations (domain 1)",
    "knowledge": "Knowledge, integrations, audit and analytics (domain 2)",
    "lifecycle": "Data lifecycle (domain 3)",
    "platform": "Trusted code and the migration runner",
}
RULE_ID = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
# How a test file names the rule it proves, where the proof is.
MARKER = re.compile(r"\brule: ([a-z0-9]+(?:-[a-z0-9]+)*) \(docs/rules\.md\)")
MARKED_SUFFIXES = (".sql", ".py", ".toml")


class RulesError(ValueError):
    """docs/rules.toml is malformed."""


@dataclass(frozen=True)
class Enforcer:
    file: str
    objects: tuple[str, ...]


@dataclass(frozen=True)
class Rule:
    id: str
    domain: str
    rule: str
    enforced: tuple[Enforcer, ...]
    proved: str
    also: tuple[str, ...]
    doctor: tuple[str, ...]

    @property
    def marker(self) -> str:
        """What the proving test file says where the proof is."""
        return f"rule: {self.id} (docs/rules.md)"


def _strings(value: object, what: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise RulesError(f"{what} must be a list of non-empty strings")
    return tuple(value)


def _rule(raw: dict[str, object]) -> Rule:
    rule_id = raw.get("id")
    if not isinstance(rule_id, str) or not RULE_ID.fullmatch(rule_id):
        raise RulesError(f"rule id {rule_id!r} is not kebab-case")
    unknown = set(raw) - {"id", "domain", "rule", "enforced", "proved", "also", "doctor"}
    if unknown:
        raise RulesError(f"rule {rule_id}: unknown key(s) {', '.join(sorted(unknown))}")
    domain, text, proved = raw.get("domain"), raw.get("rule"), raw.get("proved")
    if domain not in DOMAINS:
        raise RulesError(f"rule {rule_id}: domain {domain!r} is not one of {', '.join(DOMAINS)}")
    if not isinstance(text, str) or not text.endswith("."):
        raise RulesError(f"rule {rule_id}: 'rule' must be one sentence ending with a period")
    if not isinstance(proved, str) or not proved:
        raise RulesError(f"rule {rule_id}: 'proved' must name one test file")
    enforced = raw.get("enforced")
    if not isinstance(enforced, list) or not enforced:
        raise RulesError(f"rule {rule_id}: 'enforced' must list at least one file")
    enforcers = []
    for item in enforced:
        if not isinstance(item, dict) or not isinstance(item.get("file"), str):
            raise RulesError(f"rule {rule_id}: each 'enforced' entry needs a file")
        enforcers.append(Enforcer(item["file"], _strings(item.get("objects"), f"rule {rule_id}: objects")))
    return Rule(rule_id, domain, text, tuple(enforcers), proved,
                _strings(raw.get("also", []), f"rule {rule_id}: also"),
                _strings(raw.get("doctor", []), f"rule {rule_id}: doctor"))


def load_rules(path: Path) -> list[Rule]:
    with path.open("rb") as f:
        data = tomllib.load(f)
    raw_rules = data.get("rule")
    if not isinstance(raw_rules, list) or not raw_rules:
        raise RulesError(f"{path}: no [[rule]] entries")
    rules = [_rule(r) for r in raw_rules]
    seen: set[str] = set()
    for r in rules:
        if r.id in seen:
            raise RulesError(f"rule id {r.id} is listed twice")
        seen.add(r.id)
    return rules


def doctor_checks(root: Path) -> set[str]:
    """The names of the checks `neurant-db doctor` reports (quoted in the runner's source)."""
    text = "\n".join(p.read_text(encoding="utf-8") for p in (root / "runner").rglob("doctor*.py"))
    return set(re.findall(r"[\"']([a-z_]+\.[a-z_]+)[\"']", text))


def problems(rules: list[Rule], root: Path) -> list[str]:
    """Everything that makes the index lie: a missing file, an enforcing object its
    file does not name, a proving test file that does not name its rule, a doctor
    check that does not exist."""
    found: list[str] = []
    checks = doctor_checks(root)
    for r in rules:
        found += [f"{r.id}: neurant-db doctor has no check {c}" for c in r.doctor if c not in checks]
        for e in r.enforced:
            path = root / e.file
            if not path.is_file():
                found.append(f"{r.id}: enforcing file {e.file} does not exist")
                continue
            text = path.read_text(encoding="utf-8")
            found += [f"{r.id}: {e.file} does not name {obj}" for obj in e.objects if obj not in text]
        for test in (r.proved, *r.also):
            if not (root / test).is_file():
                found.append(f"{r.id}: test file {test} does not exist")
        proved = root / r.proved
        if proved.is_file() and r.marker not in proved.read_text(encoding="utf-8"):
            found.append(f"{r.id}: {r.proved} does not name the rule (write `{r.marker}` where the proof is)")
    return found + stray_markers(rules, root)


def stray_markers(rules: list[Rule], root: Path) -> list[str]:
    """Markers in tests/ that name no rule, or a rule that lists neither that file as
    its proof nor among its other tests (a rule renamed or moved, its marker left behind)."""
    files = {r.id: {r.proved, *r.also} for r in rules}
    found = []
    tests = root / "tests"
    for path in sorted(tests.rglob("*")) if tests.is_dir() else []:
        if path.suffix not in MARKED_SUFFIXES or not path.is_file():
            continue
        name = path.relative_to(root).as_posix()
        for rule_id in MARKER.findall(path.read_text(encoding="utf-8")):
            if rule_id not in files:
                found.append(f"{name} names rule {rule_id}, which docs/rules.toml does not list")
            elif name not in files[rule_id]:
                found.append(f"{name} names rule {rule_id}, whose entry does not list that file")
    return found


def _link(path: str) -> str:
    return f"[`{path}`](../{path})"


def render_rules(rules: list[Rule]) -> str:
    lines = [
        "# Business rules: where each is enforced and proved",
        "",
        f"Generated from `{RULES_SOURCE}` by `python -m neurant_db.repo_docs`; do not edit.",
        "Each rule is enforced by the objects named, in the files named, and proved in one test",
        "file, which says `rule: <id> (docs/rules.md)` where the proof is (search the file for",
        "it). Other tests that prove a facet of the rule (concurrency, jobs end to end) are",
        "listed under *also*.",
        "The design behind the rules: [design.md](design.md); who may read and write each table,",
        "cell by cell: [access-matrix.md](access-matrix.md).",
        "",
        f"{len(rules)} rules.",
    ]
    for domain, title in DOMAINS.items():
        members = [r for r in rules if r.domain == domain]
        if not members:
            continue
        lines += ["", f"## {title}", ""]
        for r in members:
            lines += [f"### {r.id}", "", r.rule, ""]
            for e in r.enforced:
                lines.append(f"- enforced in {_link(e.file)}: " + ", ".join(f"`{o}`" for o in e.objects))
            lines.append(f"- proved in {_link(r.proved)} (`{r.marker}`)")
            if r.also:
                lines.append("- also: " + ", ".join(_link(t) for t in r.also))
            if r.doctor:
                checks = ", ".join(f"`{c}`" for c in r.doctor)
                lines.append(f"- checked on the live catalog by `neurant-db doctor`: {checks}")
            lines.append("")
        lines.pop()
    return "\n".join(lines) + "\n"
