"""``lakehouse gate bronze|silver|gold``: a thin shell over :func:`expectations.runner.run_gate`."""

from __future__ import annotations

import argparse

from lakehouse.errors import GateFailed

DESCRIPTION = """\
Validate one layer of the lake with Great Expectations and say what failed, where, and how often.

  bronze  the Parquet the bronze job wrote: contract columns and types, required fields, device id
          pattern, clock skew; per increment the quarantine share, rows against the manifests, and the
          row volume against recent cycles
  silver  silver_readings and silver_rejected_readings (local warehouse): unique event key, values in
          each device type's valid range, consistent units, registered devices, no future readings,
          late data within the lookback; a known reason for every rejected row
  gold    hourly metrics (min <= p50 <= p95 <= max, min <= avg <= max, completeness in [0, 1], counts
          equal to silver's), anomaly windows (start <= end, known kind) and device health

Each expectation has a severity in expectations/gates.toml: an "error" failure makes the gate fail
(exit code 3) and a cycle stop before the next layer; a "warning" is printed and recorded only. Every
outcome is appended to the ops_gate_results records under <lake>/ops/. The gate reads; it never deletes
or changes data.

Without --partition or --batch the whole layer is validated, one event date at a time.
"""

EPILOG = """\
examples:
  lakehouse gate bronze --batch 3 --batch 4     # the rows bronze batches 3 and 4 wrote
  lakehouse gate silver --partition 2026-03-01  # one event date of silver
  lakehouse gate gold --docs                    # all of gold, and Data Docs at <lake>/gx/data_docs/

exit codes: 0 passed (warnings may be printed), 3 an error-severity expectation failed,
            2 the input cannot be validated (missing table, partition or manifest; the message says which).
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "gate",
        help="validate a layer with Great Expectations (bronze, silver or gold)",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("layer", choices=("bronze", "silver", "gold"), help="the layer to validate")
    parser.add_argument(
        "--partition",
        dest="partitions",
        metavar="DATE",
        action="extend",
        nargs="+",
        help="an event date (YYYY-MM-DD) to validate; repeat or list several (default: every date)",
    )
    parser.add_argument(
        "--batch",
        dest="batch_ids",
        metavar="N",
        type=int,
        action="extend",
        nargs="+",
        help="bronze: validate the rows of these bronze batches (ids as in _manifests/bronze_readings/); "
        "silver: treat these batches as this cycle's for the lookback rule",
    )
    parser.add_argument(
        "--docs",
        action="store_true",
        help="also build Great Expectations Data Docs (HTML) under <lake>/gx/data_docs/",
    )
    parser.add_argument(
        "--run-id",
        metavar="ID",
        help="the run id recorded with the results (default: a new one, e.g. 20260301T120000Z-1a2b3c)",
    )
    parser.set_defaults(handler=handle)


def handle(settings, args: argparse.Namespace) -> int:
    from expectations.runner import run_gate
    from lakehouse.ops import new_run_id

    result = run_gate(
        settings,
        args.layer,
        run_id=args.run_id or new_run_id(),
        batch_ids=args.batch_ids,
        partitions=args.partitions,
        docs=args.docs,
    )
    report = result.format_report()
    if not result.success:
        raise GateFailed(report)
    print(report)
    return 0
