"""The gates' configuration: severities, ``mostly`` thresholds and parameters from ``gates.toml``.

``Settings.gates_config`` names the file (default ``expectations/gates.toml``). Every rule a suite uses
must be configured and every configured rule must exist, so that a typo cannot quietly turn a check off.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from lakehouse.errors import LakehouseError

Severity = Literal["error", "warning"]
SEVERITIES: tuple[Severity, ...] = ("error", "warning")

REQUIRED_PARAMETERS: dict[str, type | tuple[type, ...]] = {
    "volume_recent_cycles": int,
    "volume_min_cycles": int,
    "volume_min_ratio": (int, float),
    "volume_max_ratio": (int, float),
    "silver_lookback_days": (int, float),
    "rejection_reasons": list,
    "metric_rejection_reasons": list,
    "anomaly_kinds": list,
    "anomaly_severities": list,
    "health_statuses": list,
    "order_decimals": int,
}


@dataclass(frozen=True)
class Rule:
    severity: Severity
    mostly: float = 1.0


@dataclass(frozen=True)
class GateConfig:
    path: str
    rules: dict[str, dict[str, Rule]]  # suite -> rule -> Rule
    parameters: dict[str, Any] = field(default_factory=dict)

    def rule(self, suite: str, rule: str) -> Rule:
        try:
            return self.rules[suite][rule]
        except KeyError:
            raise LakehouseError(
                f"{self.path}: no severity for rule '{rule}' of suite '{suite}'; add "
                f'`{rule} = {{ severity = "error" }}` (or "warning") under [{suite}]'
            ) from None

    def check_covers(self, suite: str, used_rules: set[str]) -> None:
        """Fail when the file configures rules the suite does not have (a typo) or misses some it has."""
        configured = set(self.rules.get(suite, {}))
        missing = sorted(used_rules - configured)
        unknown = sorted(configured - used_rules)
        if missing:
            raise LakehouseError(
                f"{self.path}: suite '{suite}' has rules with no severity: {missing}; add them under [{suite}]"
            )
        if unknown:
            raise LakehouseError(
                f"{self.path}: [{suite}] configures rules the suite does not have: {unknown}; "
                f"its rules are {sorted(used_rules)}"
            )


def load_gate_config(path: str | Path) -> GateConfig:
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise LakehouseError(
            f"gates config {path} does not exist; set `gates_config` in lakehouse.toml (or "
            f"LAKEHOUSE_GATES_CONFIG) to a file like expectations/gates.toml"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise LakehouseError(f"{path}: not valid TOML: {exc}") from exc

    parameters = data.pop("parameters", {})
    for name, kind in REQUIRED_PARAMETERS.items():
        if name not in parameters:
            raise LakehouseError(f"{path}: [parameters] has no '{name}'; see expectations/gates.toml")
        if not isinstance(parameters[name], kind) or isinstance(parameters[name], bool):
            raise LakehouseError(f"{path}: [parameters] {name} = {parameters[name]!r} has the wrong type")

    rules: dict[str, dict[str, Rule]] = {}
    for suite, table in data.items():
        if not isinstance(table, dict):
            raise LakehouseError(f"{path}: '{suite}' must be a table [{suite}] of rules")
        rules[suite] = {}
        for rule, spec in table.items():
            where = f"{path}: [{suite}] {rule}"
            if not isinstance(spec, dict) or set(spec) - {"severity", "mostly"}:
                raise LakehouseError(f'{where}: write it as {{ severity = "error", mostly = 1.0 }}')
            severity = spec.get("severity")
            if severity not in SEVERITIES:
                raise LakehouseError(f"{where}: severity {severity!r} must be one of {list(SEVERITIES)}")
            mostly = spec.get("mostly", 1.0)
            if isinstance(mostly, bool) or not isinstance(mostly, int | float) or not 0 < mostly <= 1:
                raise LakehouseError(f"{where}: mostly {mostly!r} must be a number in (0, 1]")
            rules[suite][rule] = Rule(severity=severity, mostly=float(mostly))
    return GateConfig(path=str(path), rules=rules, parameters=parameters)
