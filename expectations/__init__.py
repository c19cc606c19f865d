"""Great Expectations gates for every layer of the lakehouse.

``run_gate(settings, "bronze" | "silver" | "gold", run_id=..., batch_ids=..., partitions=..., docs=...)``
validates what a cycle wrote to one layer with the suites in ``bronze.py``, ``silver.py`` and ``gold.py``
(severities and thresholds in ``gates.toml``), records every outcome in ``ops_gate_results`` and returns a
``GateResult``; ``lakehouse gate`` is its command line (``cli.py``).

Great Expectations takes seconds to import, so ``run_gate`` is loaded on first use: importing this package
(as ``lakehouse --help`` does, through ``cli.py``) stays cheap.
"""

from typing import Any

from expectations.result import ExpectationOutcome, GateResult

__all__ = ["ExpectationOutcome", "GateResult", "run_gate"]


def __getattr__(name: str) -> Any:
    if name == "run_gate":
        from expectations.runner import run_gate

        return run_gate
    raise AttributeError(f"module 'expectations' has no attribute '{name}'")
