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

    def add(self, rule: str, name: str, kind: type[Expectation], note: str, **kwargs: Any) -> None:
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
                meta={"rule": rule, "name": name, "severity": configured.severity},
            )
        )
        self._names.add(name)
        self._rules.add(rule)

    def build(self) -> gx.ExpectationSuite:
        self.config.check_covers(self.name, self._rules)
        return gx.ExpectationSuite(name=self.name, expectations=list(self.expectations))

    @property
    def result_format(self) -> dict[str, Any]:
        return {
            "result_format": "SUMMARY",
            "unexpected_index_column_names": list(self.sample_columns),
            "partial_unexpected_count": 5,
        }
