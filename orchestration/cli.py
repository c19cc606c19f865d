"""``lakehouse run | demo | transform | status | sql``: run cycles and look at what they built."""

from __future__ import annotations

import argparse
import json
import sys

from lakehouse.errors import LakehouseError

_FMT = argparse.RawDescriptionHelpFormatter


def register(subparsers: argparse._SubParsersAction) -> None:
    run = subparsers.add_parser(
        "run",
        help="one full cycle: bronze, gate, silver, gate, gold, gate",
        formatter_class=_FMT,
        description=(
            "Run one cycle on the lake: land new landing files into bronze (Spark, trigger availableNow),\n"
            "gate bronze, build silver with dbt, gate silver, build gold, gate gold. A gate with an error\n"
            "stops the cycle before the next layer; nothing is deleted and later layers keep their previous\n"
            "contents. Each step's status, rows and seconds go to <lake>/ops/ops_runs/ and the terminal."
        ),
        epilog="exit codes: 0 ok, 3 a gate failed, 4 a step failed, 2 bad settings\n\n"
        "examples:\n  lakehouse run\n  lakehouse --lake /data/lake run --json-logs",
    )
    run.add_argument("--json-logs", action="store_true", help="print one JSON object per step instead of text")
    run.add_argument(
        "--wait",
        action="store_true",
        help="if another cycle is running on this lake, queue behind it (default: exit 2)",
    )
    run.add_argument(
        "--retries", type=int, default=0, help="retry a failed bronze/silver/gold step N times (default 0)"
    )
    run.add_argument(
        "--bronze-on",
        choices=("local", "emr-serverless"),
        help="where bronze runs: local (Spark here) or emr-serverless (the packaged job, StartJobRun on "
        "emr_serverless_application_id; env LAKEHOUSE_BRONZE_ON; default local)",
    )
    run.set_defaults(handler=_run)

    schedule = subparsers.add_parser(
        "schedule",
        help="run cycles on an interval or a cron schedule until stopped",
        formatter_class=_FMT,
        description=(
            "Run `lakehouse run` cycles on a schedule. Cycles never overlap, across processes too: each\n"
            "cycle holds a file lock on the lake (released by the OS if the holder dies, even by kill -9);\n"
            "a cycle that is due while another runs waits for it. A failed bronze/silver/gold step is retried\n"
            "with exponential backoff up to --retries times, then the cycle is marked failed and the next one\n"
            "runs on time. SIGTERM or Ctrl-C finishes the current step and exits cleanly (a second Ctrl-C\n"
            "interrupts at once). Times are UTC."
        ),
        epilog='examples:\n  lakehouse schedule --every 15m\n  lakehouse schedule --cron "0 * * * *"     # hourly\n'
        "  lakehouse schedule --every 30s --max-cycles 10 --retries 3",
    )
    when = schedule.add_mutually_exclusive_group(required=True)
    when.add_argument("--every", metavar="INTERVAL", help="run a cycle every INTERVAL: 30s, 15m, 1h, 1d")
    when.add_argument("--cron", metavar="EXPR", help='five-field cron expression in UTC, e.g. "*/15 * * * *"')
    schedule.add_argument(
        "--max-cycles", type=int, metavar="N", help="stop after N cycles (default: run until stopped)"
    )
    schedule.add_argument("--retries", type=int, default=2, help="retries of a failed step (default 2)")
    schedule.add_argument("--backoff", type=float, default=5.0, metavar="SECONDS", help="first retry delay (default 5)")
    schedule.set_defaults(handler=_schedule)

    stream = subparsers.add_parser(
        "stream",
        help="continuous mode: bronze every few seconds, silver and gold in dbt micro-cycles",
        formatter_class=_FMT,
        description=(
            "Keep the lake fresh until stopped. The bronze job runs as a streaming query with a processing-\n"
            "time trigger (--interval); whenever it has published new batches, a micro-cycle runs at most\n"
            "every --dbt-every: gate bronze (the new batches), silver, gate, gold, gate, as in `lakehouse run`,\n"
            "recorded in <lake>/ops/ops_runs/ (mode stream). The first micro-cycle, and one every --seeds-every,\n"
            "is a full one (seeds, every model, dbt's data tests); the others build only the readings' models\n"
            "and leave the data tests to the GX gates, to stay fast. A failed gate marks its micro-cycle failed\n"
            "and alerts; the stream keeps running. It holds the lake's cycle\n"
            "lock the whole time: `lakehouse run`, `schedule` or `backfill` on the same lake wait or refuse.\n"
            "SIGTERM or Ctrl-C stops the query after its current batch and lets the current dbt step finish."
        ),
        epilog="exit codes: 0 stopped cleanly, 2 bad settings or the lake is busy, 4 the bronze query failed\n\n"
        "examples:\n  lakehouse stream                                  # until Ctrl-C\n"
        "  lakehouse stream --interval 5s --dbt-every 15s\n"
        "  lakehouse --lake /data/lake stream --for 1h\n  lakehouse stream --max-cycles 3\n"
        "  lakehouse stream --mqtt --mqtt-broker localhost:1883     # the MQTT bridge beside bronze",
    )
    stream.add_argument(
        "--interval", default="2s", metavar="INTERVAL", help="bronze trigger interval: 2s, 1m, ... (default 2s)"
    )
    stream.add_argument(
        "--dbt-every",
        default="4s",
        metavar="INTERVAL",
        help="at most one micro-cycle per INTERVAL, when bronze has new batches (default 4s: p95 send-to-gold "
        "50 s at 2,000 readings/s on 2 cores, bench/freshness.py)",
    )
    stream.add_argument(
        "--seeds-every",
        default="1h",
        metavar="INTERVAL",
        help="a full micro-cycle (seeds, all models, dbt data tests) this often (default 1h)",
    )
    until = stream.add_mutually_exclusive_group()
    until.add_argument("--max-cycles", type=int, metavar="N", help="stop after N micro-cycles")
    until.add_argument("--for", dest="duration", metavar="DURATION", help="stop after DURATION: 90s, 30m, 8h")
    stream.add_argument(
        "--retries", type=int, default=1, help="retries of a failed silver/gold step in a micro-cycle (default 1)"
    )
    stream.add_argument(
        "--mqtt",
        action="store_true",
        help="also run the MQTT bridge beside bronze (as `lakehouse ingest mqtt`, with the mqtt_* settings: "
        "LAKEHOUSE_MQTT_BROKER, ...), so readings published on MQTT reach gold",
    )
    stream.add_argument("--mqtt-broker", metavar="HOST:PORT", help="with --mqtt: the broker (setting mqtt_broker)")
    stream.set_defaults(handler=_stream)

    backfill = subparsers.add_parser(
        "backfill",
        help="rebuild silver and gold for a range of event dates from bronze",
        formatter_class=_FMT,
        description=(
            "Rebuild silver and gold for the event dates --from..--to (inclusive, UTC) from bronze, and leave\n"
            "every other date exactly as it is. Use it after changing a silver rule or a seed (metric limits,\n"
            "unit conversions), for readings that arrived later than the incremental lookback (3 days), or to\n"
            "repair a damaged range. Every unit of the range is rebuilt whatever the lookback; bronze is not\n"
            "touched (land new files first with `lakehouse run` or `lakehouse bronze --once`). The rebuilt dates\n"
            "are gated, alerts go out as after a cycle, and the run is recorded in <lake>/ops/ops_runs/ (mode\n"
            "backfill, with the range). It takes the lake's cycle lock: never beside a cycle or a stream."
        ),
        epilog="exit codes: 0 ok, 2 bad arguments or the lake is busy, 3 a gate failed, 4 a step failed\n\n"
        "examples:\n  lakehouse backfill --from 2026-03-01 --to 2026-03-07\n"
        "  lakehouse backfill --from 2026-03-01 --to 2026-03-01 --layers gold   # re-aggregate from silver\n"
        "  lakehouse --lake /data/lake backfill --from 2026-02-01 --to 2026-02-28 --wait",
    )
    backfill.add_argument("--from", dest="date_from", required=True, metavar="YYYY-MM-DD", help="first event date")
    backfill.add_argument("--to", dest="date_to", required=True, metavar="YYYY-MM-DD", help="last event date")
    backfill.add_argument(
        "--layers",
        default="silver,gold",
        help="silver,gold (default) or one of them; gold alone re-aggregates from the silver already there",
    )
    backfill.add_argument(
        "--wait", action="store_true", help="if a cycle or stream holds the lake, queue behind it (default: exit 2)"
    )
    backfill.set_defaults(handler=_backfill)

    demo = subparsers.add_parser(
        "demo",
        help="simulate a fleet and run one cycle on it, with a table of figures",
        formatter_class=_FMT,
        description=(
            "Simulate a sensor fleet into the landing zone (with a small share of dirty records), then run\n"
            "one full cycle and print, per stage, records in, out, quarantined or rejected, seconds and\n"
            "records per second. Needs no cloud account: Spark runs locally, dbt on DuckDB."
        ),
        epilog="examples:\n  lakehouse demo\n  lakehouse demo --readings 1000000 --devices 200\n"
        "  lakehouse --lake /tmp/lake demo --seed 7",
    )
    demo.add_argument("--readings", type=int, default=100_000, help="readings to simulate (default 100,000)")
    demo.add_argument("--devices", type=int, default=50, help="devices in the fleet (default 50; at most 1000)")
    demo.add_argument("--dirty-rate", type=float, default=0.01, help="share of dirty records, 0..1 (default 0.01)")
    demo.add_argument("--seed", type=int, default=42, help="random seed: same seed, same readings (default 42)")
    demo.add_argument(
        "--stedi-customers",
        type=int,
        default=30,
        help="customers of the STEDI balance-training dataset landed beside the fleet, curated into the "
        "trusted and curated zones (default 30; 0 for none)",
    )
    demo.set_defaults(handler=_demo)

    transform = subparsers.add_parser(
        "transform",
        help="build silver and gold with dbt (target local = DuckDB, athena = Athena)",
        formatter_class=_FMT,
        description=(
            "Run `dbt build` on dbt_project/ for a layer (seeds, models and their tests). Analysts can run\n"
            "plain `dbt build` in dbt_project/ instead; this command sets the lake and target for you."
        ),
        epilog="examples:\n  lakehouse transform                 # silver, then gold\n"
        "  lakehouse transform --layer silver\n  lakehouse transform --full-refresh\n"
        "  lakehouse --target athena transform",
    )
    transform.add_argument("--layer", choices=("silver", "gold"), help="only this layer (default: both)")
    transform.add_argument("--full-refresh", action="store_true", help="rebuild incremental models from scratch")
    transform.set_defaults(handler=_transform)

    status = subparsers.add_parser(
        "status",
        help="what each layer holds: rows, partitions, last run, freshness",
        formatter_class=_FMT,
        description="Show rows, partitions, newest event and its age for bronze, quarantine, silver and gold,\n"
        "and the outcome of the last cycle.",
        epilog="examples:\n  lakehouse status\n  lakehouse status --json",
    )
    status.add_argument("--json", action="store_true", help="print JSON instead of a table")
    status.set_defaults(handler=_status)

    sql = subparsers.add_parser(
        "sql",
        help="query the local warehouse read-only (DuckDB SQL)",
        formatter_class=_FMT,
        description="Run one SQL query against <lake>/warehouse.duckdb, opened read-only, and print the result.",
        epilog='examples:\n  lakehouse sql "select * from gold.gold_anomalies order by score desc limit 10"\n'
        '  lakehouse sql "show all tables"',
    )
    sql.add_argument("query", help="the SQL to run")
    sql.set_defaults(handler=_sql)


def _run(settings, args) -> int:
    from orchestration.cycle import preflight, raise_for_failure, run_cycle
    from orchestration.schedule import cycle_lock

    settings = settings.with_overrides(bronze_on=args.bronze_on)
    preflight(settings)  # a missing setting fails here, before the lock and the first step
    with cycle_lock(settings, wait=args.wait):
        report = run_cycle(settings, echo=(lambda _line: None) if args.json_logs else print, retries=args.retries)
    if args.json_logs:
        for step in report.steps:
            print(json.dumps({"run_id": report.run_id, **vars(step)}, default=str))
    raise_for_failure(report)
    return 0


def _schedule(settings, args) -> int:
    from lakehouse.durations import parse_duration
    from orchestration.schedule import Cron, ScheduleOptions, run_schedule

    options = ScheduleOptions(
        every=parse_duration(args.every, "--every") if args.every else None,
        cron=Cron.parse(args.cron) if args.cron else None,
        max_cycles=args.max_cycles,
        retries=args.retries,
        backoff_s=args.backoff,
    )
    reports = run_schedule(settings, options, echo=lambda line: print(line, flush=True))
    failed = sum(1 for r in reports if not r.success)
    print(f"schedule: stopped after {len(reports)} cycle(s), {failed} failed")
    return 0


def _stream(settings, args) -> int:
    from lakehouse.durations import parse_seconds
    from orchestration.stream import StreamOptions, run_stream

    options = StreamOptions(
        interval_s=parse_seconds(args.interval, "--interval"),
        dbt_every_s=parse_seconds(args.dbt_every, "--dbt-every"),
        seeds_every_s=parse_seconds(args.seeds_every, "--seeds-every"),
        max_cycles=args.max_cycles,
        duration_s=parse_seconds(args.duration, "--for") if args.duration else None,
        retries=args.retries,
    )
    if args.mqtt or args.mqtt_broker:
        from dataclasses import replace

        from ingestion.mqtt_bridge import bridge_options

        settings = settings.with_overrides(mqtt_broker=args.mqtt_broker)
        options = replace(options, mqtt=bridge_options(settings))
    if options.max_cycles is not None and options.max_cycles < 1:
        raise LakehouseError(f"--max-cycles {options.max_cycles} must be at least 1")
    report = run_stream(settings, options, echo=lambda line: print(line, flush=True))
    print(report.summary(), flush=True)
    return 0


def _backfill(settings, args) -> int:
    from orchestration.backfill import DateRange, parse_layers, run_backfill
    from orchestration.cycle import raise_for_failure
    from orchestration.schedule import cycle_lock

    date_range = DateRange.parse(args.date_from, args.date_to)
    layers = parse_layers(args.layers)
    with cycle_lock(settings, wait=args.wait):
        report = run_backfill(settings, date_range, layers, echo=lambda line: print(line, flush=True))
    raise_for_failure(report)
    print(f"backfill {date_range}: ok ({', '.join(layers)}; run {report.run_id})")
    return 0


def _demo(settings, args) -> int:
    from orchestration.cycle import raise_for_failure
    from orchestration.demo import DemoOptions, format_stage_table, next_steps, run_demo

    if not 0 <= args.dirty_rate <= 1:
        raise LakehouseError(f"--dirty-rate {args.dirty_rate} must be between 0 and 1")
    if args.stedi_customers < 0:
        raise LakehouseError(f"--stedi-customers {args.stedi_customers} must be 0 or more")
    options = DemoOptions(
        readings=args.readings,
        devices=args.devices,
        dirty_rate=args.dirty_rate,
        seed=args.seed,
        stedi_customers=args.stedi_customers,
    )
    report = run_demo(settings, options)
    print()
    print(format_stage_table(report))
    print()
    if report.cycle.success:
        print(next_steps(settings))
    raise_for_failure(report.cycle)
    return 0


def _transform(settings, args) -> int:
    from orchestration.transform import transform

    layers = [args.layer] if args.layer else ["silver", "gold"]
    for layer in layers:
        result = transform(settings, layer, full_refresh=args.full_refresh)
        print(f"transform {layer}: {'ok' if result.success else 'FAILED'} in {result.seconds:.1f} s")
        if not result.success:
            raise LakehouseError(f"dbt build of {layer} failed:\n  " + "\n  ".join(result.failures))
    return 0


def _status(settings, args) -> int:
    from orchestration.status import format_status, last_run, layer_status

    statuses = layer_status(settings)
    run = last_run(settings)
    if args.json:
        print(json.dumps({"layers": [vars(s) for s in statuses], "last_run": run}, default=str, indent=1))
    else:
        print(format_status(statuses, run))
    return 0


def _sql(settings, args) -> int:
    import duckdb

    warehouse = settings.lake_root.warehouse
    if not warehouse.exists():
        raise LakehouseError(f"{warehouse} does not exist yet; run `lakehouse demo` or `lakehouse run` first")
    with duckdb.connect(str(warehouse), read_only=True) as con:
        try:
            relation = con.sql(args.query)
        except duckdb.Error as exc:
            raise LakehouseError(f"query failed: {exc}") from exc
        if relation is not None:
            relation.show(max_rows=100, max_width=sys.maxsize if not sys.stdout.isatty() else None)
    return 0
