"""What silver rejected and why, in words a user can act on: the top reasons with a count, one example
row and the fix. The cycle's summary (orchestration/cycle.py) and the silver and gold gates
(expectations/runner.py) print it when silver rejects a large share of the readings.

Pure: the caller passes ``rows(sql)``, a function that runs portable SQL (DuckDB or Athena) and returns
tuples, and the rejected table's name.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

# A share of rejected readings at or above this is "large": the summary names the reasons.
LARGE_SHARE = 0.05

FIXES: dict[str, str] = {
    "unknown_device": "register the device: `lakehouse catalog import devices.csv` (device_id,device_type,"
    "site_id,installed_at), or replay with --register --device-type T; then `lakehouse backfill` over its dates",
    "device_type_mismatch": "the device reports another device_type than the catalogue has: fix the sender or "
    "the catalogue row (`lakehouse catalog import`), then `lakehouse backfill` over its dates",
    "future_event": "the device clock runs ahead of the time bronze received the reading: fix its clock (NTP), "
    "or raise future_tolerance_s if the skew is expected",
    "before_install": "the readings are older than the device's installed_at in the catalogue: correct "
    "installed_at (`lakehouse catalog import devices.csv --effective-from ...`), then `lakehouse backfill`",
    "after_retirement": "the device sends after its retired_at: clear or move retired_at in the catalogue, then "
    "`lakehouse backfill`",
    "unexpected_metric": "declare the metric for the device type: `lakehouse catalog import metrics.csv` "
    "(device_type,metric,unit,valid_min,valid_max), then `lakehouse backfill` over its dates",
    "out_of_range": "values outside the metric's valid range: check the sensor and its unit, or widen "
    "valid_min/valid_max in the catalogue (`lakehouse catalog import`), then `lakehouse backfill`",
    "duplicate": "nothing to fix: another copy of the same reading (a retry, a re-published batch) is in silver",
}
_EXAMPLE_COLUMNS = ("device_id", "device_type", "event_at", "seq", "rejected_metric", "source_file")


@dataclass(frozen=True)
class Reason:
    reason: str
    count: int
    example: dict[str, Any]

    @property
    def fix(self) -> str:
        return FIXES.get(self.reason, "see the rejection_reason column of silver_rejected_readings")


@dataclass(frozen=True)
class Rejections:
    readings: int  # accepted + rejected rows looked at
    rejected: int
    reasons: tuple[Reason, ...]  # the top ones, most frequent first

    @property
    def share(self) -> float:
        return self.rejected / self.readings if self.readings else 0.0

    @property
    def is_large(self) -> bool:
        return self.rejected > 0 and self.share >= LARGE_SHARE

    def format(self, indent: str = "  ") -> str:
        lines = [f"silver rejected {self.rejected:,} of {self.readings:,} readings ({self.share:.1%}); top reasons:"]
        for reason in self.reasons:
            example = ", ".join(f"{k}={v}" for k, v in reason.example.items() if v is not None)
            lines.append(f"{indent}{reason.reason}: {reason.count:,} (e.g. {example})")
            lines.append(f"{indent}  fix: {reason.fix}")
        return "\n".join(lines)


def summarise(
    rows: Callable[[str], Sequence[tuple]],
    accepted_table: str,
    rejected_table: str,
    where: str = "true",
    top: int = 3,
) -> Rejections:
    """The rejected rows of ``where`` (a condition on both tables, e.g. a batch or date filter) by reason."""
    accepted = rows(f"select count(*) from {accepted_table} where {where}")[0][0]
    counts = rows(
        f"select rejection_reason, count(*) from {rejected_table} where {where} "
        f"group by rejection_reason order by count(*) desc, rejection_reason limit {int(top)}"
    )
    rejected = rows(f"select count(*) from {rejected_table} where {where}")[0][0]
    reasons = []
    present = _columns(rows, rejected_table)
    shown = [c for c in _EXAMPLE_COLUMNS if c in present]
    for reason, count in counts:
        found = rows(
            f"select {', '.join(shown)} from {rejected_table} where {where} and rejection_reason = '{reason}' "
            f"order by event_at, device_id limit 1"
        )
        example = dict(zip(shown, found[0], strict=True)) if found else {}
        metric = example.get("rejected_metric")
        # A reading may be rejected for a field that is no column of silver (a metric its type does not
        # declare, kept in rescued data): then the example shows no value.
        if metric and str(metric).isidentifier() and metric in present:
            value = rows(
                f"select {metric} from {rejected_table} where {where} and rejection_reason = '{reason}' "
                f"and device_id = '{example['device_id']}' and seq = {int(example['seq'])} limit 1"
            )
            example["value"] = value[0][0] if value else None
        reasons.append(Reason(str(reason), int(count), example))
    return Rejections(int(accepted) + int(rejected), int(rejected), tuple(reasons))


def _columns(rows: Callable[[str], list[tuple]], table: str) -> set[str]:
    """The column names of ``table`` (``schema.name``), from the warehouse's information schema."""
    schema, _, name = table.replace('"', "").rpartition(".")
    schema = schema.rpartition(".")[2]
    in_schema = f" and table_schema = '{schema}'" if schema else ""
    found = rows(f"select column_name from information_schema.columns where table_name = '{name}'{in_schema}")
    return {str(column) for (column,) in found}
