"""What a gate returns: one outcome per expectation and partition, and a report people read."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from typing import Any, Literal

Layer = Literal["bronze", "silver", "gold"]
LAYERS: tuple[Layer, ...] = ("bronze", "silver", "gold")

SAMPLES_IN_REPORT = 3


@dataclass(frozen=True)
class ExpectationOutcome:
    suite: str
    expectation: str  # unique in the suite, e.g. temperature_c_in_valid_range_for_machine
    rule: str  # the gates.toml key that gives the severity
    column: str | None
    severity: str  # "error" or "warning"
    success: bool
    element_count: int | None  # rows in the frame
    unexpected_count: int | None
    unexpected_percent: float | None
    partition: str | None  # event date (and slice) validated, None for a table-level check
    missing_count: int | None = None  # rows the expectation skips (null values; other device types)
    note: str = ""  # what the expectation checks, in words
    observed_value: Any = None  # a table-level figure (quarantine share, rows, median), when there is one
    details: str = ""  # GX's details for table-level checks (missing columns) or the error it raised
    partial_unexpected_list: list[Any] = field(default_factory=list)
    sample_rows: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class GateResult:
    layer: Layer
    run_id: str
    suite_names: list[str]
    success: bool  # no error-severity expectation failed
    results: list[ExpectationOutcome]
    seconds: float
    docs_path: str | None = None
    scope: str = "all"  # "batches", "partitions" or "all"
    partitions: list[str] = field(default_factory=list)
    batch_ids: list[int] = field(default_factory=list)
    rows: int = 0  # rows validated, all suites together
    notes: list[str] = field(default_factory=list)

    @property
    def failures(self) -> list[ExpectationOutcome]:
        return [r for r in self.results if not r.success]

    @property
    def errors(self) -> list[ExpectationOutcome]:
        return [r for r in self.failures if r.severity == "error"]

    @property
    def warnings(self) -> list[ExpectationOutcome]:
        return [r for r in self.failures if r.severity == "warning"]

    def failed_expectations(self) -> list[tuple[str, str]]:
        """(suite, expectation) of every failure, each once, in the order of the report."""
        return list(_group(self.failures))

    def format_report(self) -> str:
        errors = {(r.suite, r.expectation) for r in self.errors}
        warnings = {(r.suite, r.expectation) for r in self.warnings}
        verdict = "passed" if self.success else "FAILED"
        counts = f"{len(errors)} error(s), {len(warnings)} warning(s)" if errors or warnings else "all expected"
        where = {
            "batches": f"batches {_ranges(self.batch_ids)}",
            "partitions": f"{len(self.partitions)} partition(s)",
            "all": "the whole layer",
        }[self.scope]
        checked = len({(r.suite, r.expectation) for r in self.results})
        lines = [
            f"gate {self.layer} {verdict}: {counts}; {checked} expectations over {where} "
            f"({len(self.partitions)} event date(s), {self.rows:,} rows) in {self.seconds:.1f} s [run {self.run_id}]"
        ]
        for note in self.notes:
            lines.append(f"  note: {note}")
        for (suite, expectation), outcomes in _group(self.failures).items():
            first = outcomes[0]
            label = "ERROR  " if first.severity == "error" else "WARNING"
            column = f" ({first.column})" if first.column else ""
            lines.append(f"  {label} {suite} :: {expectation}{column}")
            if first.note:
                lines.append(f"          {first.note}")
            unexpected = sum(o.unexpected_count or 0 for o in outcomes)
            elements = sum((o.element_count or 0) - (o.missing_count or 0) for o in outcomes)
            partitions = [o.partition for o in outcomes if o.partition]
            if any(o.unexpected_count is not None for o in outcomes):
                share = f" ({100 * unexpected / elements:.3g}%)" if elements else ""
                lines.append(f"          {unexpected:,} of {elements:,} checked rows unexpected{share}")
            if partitions:
                shown = ", ".join(partitions[:5]) + (f" and {len(partitions) - 5} more" if len(partitions) > 5 else "")
                lines.append(f"          in {shown}")
            for o in outcomes:
                if o.observed_value is not None:
                    lines.append(f"          observed: {_show(o.observed_value)}")
                    break
            for o in outcomes:
                if o.details:
                    lines.append(f"          {o.details}")
                    break
            samples = [row for o in outcomes for row in o.sample_rows][:SAMPLES_IN_REPORT]
            if not samples:
                samples = [{"value": v} for o in outcomes for v in o.partial_unexpected_list][:SAMPLES_IN_REPORT]
            for row in samples:
                lines.append("          e.g. " + "  ".join(f"{k}={_show(v)}" for k, v in row.items()))
        if self.docs_path:
            lines.append(f"  Data Docs: {self.docs_path}")
        return "\n".join(lines)

    def ops_rows(self, validated_at: datetime) -> list[dict[str, Any]]:
        """One ``ops_gate_results`` record per outcome."""
        rows = []
        for r in self.results:
            row = {k: v for k, v in asdict(r).items() if k not in ("partial_unexpected_list", "sample_rows", "note")}
            row["observed_value"] = _plain(r.observed_value)
            row.update(
                run_id=self.run_id,
                layer=self.layer,
                scope=self.scope,
                validated_at=validated_at,
                sample_rows=[{k: _plain(v) for k, v in s.items()} for s in r.sample_rows[:SAMPLES_IN_REPORT]],
            )
            rows.append(row)
        return rows


def _group(outcomes: list[ExpectationOutcome]) -> dict[tuple[str, str], list[ExpectationOutcome]]:
    grouped: dict[tuple[str, str], list[ExpectationOutcome]] = defaultdict(list)
    for o in sorted(outcomes, key=lambda o: (o.severity != "error", o.suite, o.expectation, o.partition or "")):
        grouped[(o.suite, o.expectation)].append(o)
    return grouped


def _ranges(ids: list[int]) -> str:
    if not ids:
        return "-"
    ids = sorted(ids)
    return f"{ids[0]}..{ids[-1]}" if ids == list(range(ids[0], ids[-1] + 1)) and len(ids) > 2 else str(ids)


def _plain(value: Any) -> Any:
    """A value as JSON can hold it (numpy scalars, pandas timestamps, NaN)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return None if value != value else value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalar
        return _plain(value.item())
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return str(value)


def _show(value: Any) -> str:
    value = _plain(value)
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, str) and len(value) > 60:
        return value[:57] + "..."
    return str(value)
