"""What the layer modules share: building a GX ``ExpectationSuite`` whose expectations carry their rule.

Each expectation belongs to a *rule* (the key in ``gates.toml`` that gives its severity and ``mostly``)
and has a *name* unique in its suite (``temperature_c_in_valid_range_for_machine``). Both travel in the
expectation's ``meta`` so that results can be traced back, and the rule's severity is also set as GX's own
``severity`` (error -> critical) so Data Docs show it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import great_expectations as gx
from great_expectations.expectations.expectation import Expectation
from great_expectations.expectations.metadata_types import FailureSeverity

from expectations.config import GateConfig
from lakehouse.fleet import Fleet

GX_SEVERITY = {"error": FailureSeverity.CRITICAL, "warning": FailureSeverity.WARNING}


@dataclass
class SuiteSpec:
    """A suite under construction, plus the columns that identify a row in failure samples."""

    name: str
    config: GateConfig
    sample_columns: tuple[str, ...]
    expectations: list[Expectation] = field(default_factory=list)
    _names: set[str] = field(default_factory=set)
    _rules: set[str] = field(default_factory=set)

    def add(
        self,
        rule: str,
        name: str,
        kind: type[Expectation],
        note: str,
        column_label: str | None = None,
        **kwargs: Any,
    ) -> None:
        """Add one expectation of ``rule``; ``column_label`` names a derived column for people."""
        if name in self._names:
            raise ValueError(f"suite {self.name}: expectation name '{name}' is used twice")
        configured = self.config.rule(self.name, rule)
        if configured.mostly < 1.0 and "mostly" in kind.__fields__:
            kwargs["mostly"] = configured.mostly
        self.expectations.append(
            kind(
                **kwargs,
                severity=GX_SEVERITY[configured.severity],
                notes=note,
                meta={"rule": rule, "name": name, "severity": configured.severity, "column_label": column_label},
            )
        )
        self._names.add(name)
        self._rules.add(rule)

    def build(self) -> gx.ExpectationSuite:
        self.config.check_covers(self.name, self._rules)
        return gx.ExpectationSuite(name=self.name, expectations=list(self.expectations))

    @staticmethod
    def is_row_check(expectation: Expectation) -> bool:
        """Whether an expectation judges rows one by one (so a pass with ``mostly`` 1 means no row failed)."""
        from great_expectations.expectations.expectation import (
            ColumnMapExpectation,
            ColumnPairMapExpectation,
            MulticolumnMapExpectation,
        )

        return isinstance(expectation, ColumnMapExpectation | ColumnPairMapExpectation | MulticolumnMapExpectation)

    @property
    def result_format(self) -> dict[str, Any]:
        return {
            "result_format": "SUMMARY",
            "unexpected_index_column_names": list(self.sample_columns),
            "partial_unexpected_count": 5,
            "return_unexpected_index_query": False,  # GX would copy the frame once more per expectation
        }


UNREGISTERED_DEVICE = "chk_unregistered_device_id"  # device_id, where the registry does not have it
REGISTRY_TYPE_IF_DIFFERENT = "chk_registry_type_if_different"  # the registry's type, where device_type differs
REGISTRY_SITE_IF_DIFFERENT = "chk_registry_site_if_different"  # the registry's site, where site_id differs


def with_registry(select_sql: str, fleet: Fleet) -> str:
    """Wrap a query so each row says how it disagrees with the catalogue's devices (null: it agrees).

    The devices come from the catalogue (``lakehouse.fleet``) as an inline VALUES list: the same SQL runs
    on DuckDB and Athena. Each disagreement is one column that must be null, rather than a 1,000-value set or a
    column pair for GX to compare: both cost GX far more (it serializes the set for every metric, and
    copies the whole frame to drop the rows a pair check ignores).
    """
    values = ", ".join(f"({_text(d.device_id)}, {_text(d.device_type)}, {_text(d.site_id)})" for d in fleet.devices)
    if not values:  # a catalogue without devices: every row is unregistered
        values = "(cast(null as varchar), cast(null as varchar), cast(null as varchar))"
    return (
        f"select rows_.*, "
        f"case when registry_.registry_device_type is null then rows_.device_id end as {UNREGISTERED_DEVICE}, "
        f"case when rows_.device_type <> registry_.registry_device_type then registry_.registry_device_type end "
        f"as {REGISTRY_TYPE_IF_DIFFERENT}, "
        f"case when rows_.site_id <> registry_.registry_site_id then registry_.registry_site_id end "
        f"as {REGISTRY_SITE_IF_DIFFERENT} "
        f"from ({select_sql}) as rows_ left join (values {values}) "
        f"as registry_(registry_device_id, registry_device_type, registry_site_id) "
        f"on rows_.device_id = registry_.registry_device_id"
    )


def _text(value: str | None) -> str:
    return "cast(null as varchar)" if value is None else "'" + value.replace("'", "''") + "'"
