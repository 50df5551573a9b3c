"""Map DICOM series to modalities (t1, t1ce, t2, flair...) with ordered regex rules.

Each modality has a list of regexes, tried in order against SeriesDescription and ProtocolName
(re.search, case-insensitive); the index of the first rule that matches is the series' rank for
that modality (0 = most preferred). A modality gets the series with the strictly best rank; a tie
is ambiguous. A series that is the best match of several modalities is ambiguous too. Nothing is
guessed: ambiguities are reported and `MappingResult.require` refuses them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from oncoflow.ingest.errors import IngestError
from oncoflow.ingest.series import SeriesInfo

FIELDS = ("SeriesDescription", "ProtocolName")


@dataclass(frozen=True)
class RuleMatch:
    """A series matched by one of a modality's rules."""

    series: SeriesInfo
    modality: str
    rank: int  # index of the first matching rule in the modality's list
    pattern: str
    field: str  # which header field matched: SeriesDescription or ProtocolName

    def describe(self) -> str:
        return f"rule {self.rank + 1} {self.pattern!r} on {self.field}"


@dataclass(frozen=True)
class Ambiguity:
    """Modalities that cannot be assigned without guessing, the series involved, and why."""

    modalities: tuple[str, ...]
    series: tuple[SeriesInfo, ...]
    reason: str

    def describe(self) -> str:
        return f"{self.reason}: " + ", ".join(s.label() for s in self.series)


@dataclass
class MappingResult:
    series: list[SeriesInfo]
    rules: dict[str, list[str]]
    chosen: dict[str, SeriesInfo]  # modality -> the series selected for it
    matches: dict[str, list[RuleMatch]]  # modality -> every matching series, best rank first
    unmatched: list[SeriesInfo]  # series no rule matches
    ambiguous: list[Ambiguity] = field(default_factory=list)

    def chosen_match(self, modality: str) -> RuleMatch | None:
        chosen = self.chosen.get(modality)
        return next((m for m in self.matches.get(modality, []) if m.series is chosen), None)

    def status(self, series: SeriesInfo) -> tuple[str, str, str]:
        """(modality, status, detail) of one series, for reports and series.tsv."""
        for modality, chosen in self.chosen.items():
            if chosen is series:
                return modality, "selected", self.chosen_match(modality).describe()
        for amb in self.ambiguous:
            if any(s is series for s in amb.series):
                return ",".join(amb.modalities), "ambiguous", amb.reason
        own = [m for ms in self.matches.values() for m in ms if m.series is series]
        if not own:
            return "", "unmatched", "; ".join(["no rule matches"] + series.problems)
        if series.broken:
            return own[0].modality, "broken", "; ".join(series.problems)
        best = own[0]
        winner = self.chosen.get(best.modality)
        if winner is None:
            return best.modality, "not selected", best.describe()
        win = self.chosen_match(best.modality)
        return best.modality, "not selected", f"{best.describe()}; {winner.label()} preferred ({win.describe()})"

    def format_report(self) -> str:
        """Human-readable table: every series and what it was mapped to, then what is missing."""
        rows = [("series", "description", "protocol", "files", "modality", "status / reason")]
        for s in self.series:
            modality, status, detail = self.status(s)
            number = "?" if s.series_number is None else str(s.series_number)
            rows.append((f"#{number}", _clip(s.series_description), _clip(s.protocol_name), str(s.n_files),
                         modality or "-", f"{status}: {detail}"))
        widths = [max(len(r[i]) for r in rows) for i in range(5)]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r[:5], widths)) + "  " + r[5] for r in rows]
        for amb in self.ambiguous:
            lines.append(f"AMBIGUOUS {','.join(amb.modalities)}: {amb.describe()}")
        unassigned = [m for m in self.rules if m not in self.chosen]
        if unassigned:
            lines.append("no series chosen for: " + ", ".join(unassigned))
        return "\n".join(lines)

    def require(self, modalities: list[str], subject: str) -> dict[str, SeriesInfo]:
        """The series for each required modality; IngestError naming every missing/ambiguous one."""
        errors = []
        for modality in modalities:
            if modality in self.chosen:
                continue
            amb = [a for a in self.ambiguous if modality in a.modalities]
            broken = [m for m in self.matches.get(modality, []) if m.series.broken]
            if modality not in self.rules:
                errors.append(f"no rules for required modality {modality!r} (rules cover {sorted(self.rules)})")
            elif amb:
                errors += [f"modality {modality!r} is ambiguous: {a.describe()}" for a in amb]
            elif broken:
                errors.append(f"modality {modality!r}: the only matching series are broken: "
                              + "; ".join(f"{m.series.label()}: {m.series.reason}" for m in broken))
            else:
                errors.append(f"modality {modality!r} is missing: no series matches {self.rules[modality]}")
        if errors:
            found = "\n".join(
                f"    {s.label()} protocol {s.protocol_name!r}, {s.n_files} files" for s in self.series
            ) or "    (none)"
            raise IngestError(
                "cannot map series to modalities:\n  - " + "\n  - ".join(errors) + "\n  series found:\n" + found,
                subject=subject,
            )
        return {m: self.chosen[m] for m in modalities}


def _clip(text: str, width: int = 40) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def _compile(rules: dict[str, list[str]]) -> dict[str, list[tuple[str, re.Pattern]]]:
    compiled = {}
    for modality, patterns in rules.items():
        if isinstance(patterns, str) or not all(isinstance(p, str) for p in patterns):
            raise IngestError(f"rules for {modality!r} must be a list of regex strings, got {patterns!r}")
        try:
            compiled[modality] = [(p, re.compile(p, re.IGNORECASE)) for p in patterns]
        except re.error as exc:
            raise IngestError(f"invalid regex in rules for {modality!r}: {exc.pattern!r}: {exc}") from exc
    return compiled


def map_series_to_modalities(series: list[SeriesInfo], rules: dict[str, list[str]]) -> MappingResult:
    """Assign series to modalities by rule order; report unmatched and ambiguous series."""
    compiled = _compile(rules)
    matches: dict[str, list[RuleMatch]] = {m: [] for m in compiled}
    for s in series:
        for modality, patterns in compiled.items():
            for rank, (pattern, regex) in enumerate(patterns):
                hit = next((f for f, text in zip(FIELDS, (s.series_description, s.protocol_name))
                            if regex.search(text)), None)
                if hit:
                    matches[modality].append(RuleMatch(s, modality, rank, pattern, hit))
                    break
    for found in matches.values():
        found.sort(key=lambda m: m.rank)  # stable: keeps series order within a rank

    ambiguous: list[Ambiguity] = []
    winners: dict[str, RuleMatch] = {}
    for modality, found in matches.items():
        usable = [m for m in found if not m.series.broken]  # broken series are reported, never chosen
        if not usable:
            continue
        top = [m for m in usable if m.rank == usable[0].rank]
        if len(top) == 1:
            winners[modality] = top[0]
        else:
            ambiguous.append(Ambiguity((modality,), tuple(m.series for m in top),
                                       f"{len(top)} series tie at rule {top[0].rank + 1} {top[0].pattern!r}"))
    # A series that wins several modalities cannot be assigned to either without guessing.
    by_series: dict[int, list[str]] = {}
    for modality, m in winners.items():
        by_series.setdefault(id(m.series), []).append(modality)
    for modalities in by_series.values():
        if len(modalities) > 1:
            s = winners[modalities[0]].series
            detail = ", ".join(f"{m} ({winners[m].describe()})" for m in modalities)
            ambiguous.append(Ambiguity(tuple(modalities), (s,), f"one series is the best match of {detail}"))
            for m in modalities:
                del winners[m]

    matched_ids = {id(m.series) for found in matches.values() for m in found}
    return MappingResult(
        series=list(series),
        rules={m: list(p) for m, p in rules.items()},
        chosen={m: w.series for m, w in winners.items()},
        matches=matches,
        unmatched=[s for s in series if id(s) not in matched_ids],
        ambiguous=ambiguous,
    )
