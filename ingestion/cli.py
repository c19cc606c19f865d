"""``lakehouse produce``, ``lakehouse replay``, ``lakehouse ingest-files`` and ``lakehouse ingest mqtt``: thin
shells over :func:`ingestion.produce.produce` (or :func:`ingestion.stedi.produce_stedi` with ``--dataset
stedi``), :func:`ingestion.replay.replay`, :func:`ingestion.ingest_files.ingest_files` and
:func:`ingestion.mqtt_bridge.run_bridge`. Heavy imports (numpy,
boto3) stay inside the handlers."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta

from ingestion.dirty import DIRTY_KINDS
from ingestion.labels import DEFAULT_FAULT_RATES, FAULT_KINDS
from lakehouse.config import Settings
from lakehouse.errors import LakehouseError

SINK_CHOICES = ("landing", "s3", "kinesis", "firehose", "mqtt")
PRODUCE_DESCRIPTION = """\
Simulate a fleet of IoT sensors and send their readings to the landing zone (or S3, Kinesis, Firehose).

Devices are the first N of the simulator's fleet (lakehouse/registry.py; the default catalogue of a new
lake): environmental (temperature, humidity, pressure), machine (temperature, pressure, vibration),
wearable (acceleration x/y/z) and step trainer (distance) sensors across 5 sites, each reporting at the
interval of lakehouse/defaults/device_types.csv. Signals have daily cycles, noise, slow drift and
per-device offsets, and stay inside the alert limits of lakehouse/defaults/metric_limits.csv: alerts
come only from injected faults.

Injected faults (spikes, stuck sensors, drift, dropouts, out-of-range values) and dirty records
(malformed JSON, truncated lines, missing fields, wrong types, bad timestamps, unknown devices, retries,
late events, clock skew, extra fields, junk) are written to labels files under <lake>/landing/_labels/,
so every layer can be checked against what was injected.

The same --seed and --start give byte-identical files and labels."""

PRODUCE_EPILOG = """\
examples:
  lakehouse produce                                   # 100,000 readings, 50 devices, ending about now
  lakehouse produce --seed 7 --start 2025-01-01T00:00:00Z --readings 10000
  lakehouse produce --devices 200 --duration 6h --dirty-rate 0.05
  lakehouse produce --dirty-kinds late,duplicate,clock_skew --no-faults
  lakehouse produce --fault-rate spike=0.2 --fault-rate dropout=0
  lakehouse produce --duration 1h --rate 50           # real time: 50 readings per second
  lakehouse produce --sink kinesis --stream sensor-readings
  lakehouse produce --sink s3 --s3-uri s3://my-bucket/lake
  lakehouse produce --sink mqtt --broker localhost:1883 --rate 500   # devices publishing to a broker
  lakehouse produce --dataset stedi --customers 30 --seed 1   # customers, accelerometer, step trainer

dirty kinds (-> where bronze must put them):
{dirty}
fault kinds, in faults per device and simulated hour (defaults): {faults}
AWS sinks use the usual AWS credentials and region (environment, profile, or instance role).
""".format(
    dirty="\n".join(
        f"  {k.name:<21} {k.description} (-> {k.reason if k.destination == 'quarantine' else 'bronze'})"
        for k in DIRTY_KINDS.values()
    ),
    faults=", ".join(f"{k}={r:g}" for k, r in DEFAULT_FAULT_RATES.items()),
)


def register(subparsers: argparse._SubParsersAction) -> None:
    produce = subparsers.add_parser(
        "produce",
        help="simulate a sensor fleet into the landing zone",
        description=PRODUCE_DESCRIPTION,
        epilog=PRODUCE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    fleet = produce.add_argument_group("fleet")
    fleet.add_argument(
        "--devices",
        type=int,
        default=50,
        metavar="N",
        help="number of devices, the first N of the registry (1..1000; default 50)",
    )
    amount = fleet.add_mutually_exclusive_group()
    amount.add_argument(
        "--readings", type=int, metavar="N", help="stop after N readings (default 100,000 unless --duration is given)"
    )
    amount.add_argument(
        "--duration", type=parse_duration, metavar="DUR", help="simulate this much time instead, e.g. 90s, 30m, 6h, 2d"
    )
    fleet.add_argument(
        "--start",
        type=parse_time,
        metavar="TIME",
        help="simulated clock's start, ISO-8601 (UTC if no offset), e.g. 2025-01-01T00:00:00Z "
        "(default: now minus the run's simulated length, so the data ends about now)",
    )
    fleet.add_argument(
        "--seed",
        type=int,
        default=0,
        metavar="N",
        help="random seed; with --start it reproduces every byte (default 0)",
    )
    fleet.add_argument(
        "--rate", type=float, metavar="R", help="readings per wall-clock second (default: as fast as possible)"
    )
    fleet.add_argument(
        "--producer", default="sim", metavar="NAME", help="producer name, part of every file name (default sim)"
    )
    dirty = produce.add_argument_group("dirty records and faults")
    dirty.add_argument(
        "--dirty-rate",
        type=float,
        default=0.01,
        metavar="SHARE",
        help="share of readings that come with a dirty record (default 0.01 = 1%%)",
    )
    dirty.add_argument(
        "--dirty-kinds",
        type=_kind_list(tuple(DIRTY_KINDS)),
        metavar="K1,K2",
        help="only these dirty kinds, equally often (default: all; see below)",
    )
    dirty.add_argument(
        "--fault-rate",
        type=_fault_rate,
        action="append",
        default=[],
        metavar="KIND=RATE",
        help="faults per device and simulated hour for one kind; repeat for more kinds",
    )
    dirty.add_argument("--no-faults", action="store_true", help="inject no faults at all")
    add_sink_arguments(produce)
    stedi = produce.add_argument_group("dataset")
    stedi.add_argument(
        "--dataset",
        choices=("readings", "stedi"),
        default="readings",
        help="readings (default): the sensor fleet above; stedi: a balance-training product's customers, "
        "phone accelerometer and step-trainer readings (landing/customer, accelerometer, step_trainer) "
        "with real-world quirks, and its known answers in <lake>/landing/_stedi_answers.json",
    )
    stedi.add_argument(
        "--customers",
        type=int,
        default=30,
        metavar="N",
        help="with --dataset stedi: number of customers (default 30; --seed and --start apply too)",
    )
    produce.add_argument("--quiet", action="store_true", help="print only the final report")
    produce.set_defaults(handler=produce_handler)
    _register_replay(subparsers)
    _register_ingest_files(subparsers)
    _register_ingest(subparsers)


INGEST_FILES_DESCRIPTION = """\
Copy newline-delimited JSON files of a source (customer, accelerometer, step_trainer) into
<lake>/landing/<source>/YYYY/MM/DD/HH/, where `lakehouse bronze --once` lands them in bronze/<source>/
(lines that fail the source's contract go to quarantine/<source>/ with a reason).

Each file is copied whole and atomically (a hidden temporary file and a rename locally, one PUT on an
s3:// lake), under its name plus a digest of its content: a content that has landed before is never
copied again, and no landed file is overwritten. Folders are searched recursively for *.json, *.ndjson and
*.jsonl files. Every path is checked before the first copy."""

INGEST_FILES_EPILOG = """\
examples:
  lakehouse ingest-files --source customer exports/customer-1691348231810.json
  lakehouse ingest-files --source accelerometer exports/accelerometer/       # every *.json below it
  lakehouse --lake s3://bucket/lake ingest-files --source step_trainer step_trainer/*.json
"""


def _register_ingest_files(subparsers: argparse._SubParsersAction) -> None:
    from lakehouse.source_contracts import SOURCES

    parser = subparsers.add_parser(
        "ingest-files",
        help="copy a source's JSON files into the landing zone (customer, accelerometer, step_trainer)",
        description=INGEST_FILES_DESCRIPTION,
        epilog=INGEST_FILES_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--source", required=True, choices=tuple(SOURCES), help="which source the files hold")
    parser.add_argument("paths", nargs="+", metavar="PATH", help="files or folders to copy")
    parser.set_defaults(handler=ingest_files_handler)


INGEST_MQTT_DESCRIPTION = """\
Bridge an MQTT broker into the landing zone: subscribe to the topic filter with QoS 1 in a persistent
session and write the messages as Firehose would, newline-delimited JSON under
<lake>/landing/readings/YYYY/MM/DD/HH/ (the arrival hour), where `lakehouse bronze` lands them.

Topic and payload: sites/<site_id>/devices/<device_id>/readings, one reading per message, a JSON object
in the reading contract (README "The reading contract"), UTF-8, at most 256 KiB. A payload without a
device_id takes the topic level after `devices` (site_id: after `sites`); the payload wins when both
say. A payload that is not a JSON object (binary, not JSON, over 256 KiB) is still landed, as a line
["mqtt_unreadable", cause, topic, base64 payload] that bronze quarantines (malformed_json) with its
bytes; nothing is dropped. A message on a topic outside the filters (a subscription an earlier run left
in the session) is acknowledged, counted as ignored and not landed.

Nothing is lost: a file is cut by size, count or age, written atomically (a hidden temporary file,
fsync, rename; one PUT on an s3:// lake) and only then are its messages acknowledged to the broker. After
a crash the broker sends the unacknowledged messages again (keep --client-id the same across restarts:
it names the session); a message landed twice is identical and silver keeps it once. A lost broker is
reconnected with exponential backoff. The broker must let a file's worth of messages be in flight:
MQTT 5 asks for it (receive maximum = --max-file-messages); for MQTT 3.1.1 raise mosquitto's
max_inflight_messages (default 20), or files are cut by age with few messages each.

Runs until SIGTERM or Ctrl-C (or --for): then writes what it holds, acknowledges it and exits 0. Progress
goes to the terminal every few seconds; the counts go to ops_runs (mode mqtt) at the end and every
5 minutes. On AWS, IoT Core's topic rule sends the same topic to Firehose instead (README)."""

INGEST_MQTT_EPILOG = """\
examples:
  lakehouse ingest mqtt --broker localhost:1883
  lakehouse ingest mqtt --broker broker.site-01.example.com:8883 --ca-certs ca.pem \\
      --certfile bridge.crt --keyfile bridge.key --topic 'sites/site-01/devices/+/readings'
  LAKEHOUSE_MQTT_PASSWORD=... lakehouse ingest mqtt --broker mqtt.local --username bridge --protocol 3.1.1
  lakehouse --lake s3://bucket/lake ingest mqtt --broker 10.0.0.5:1883 --max-file-seconds 30

settings: mqtt_broker, mqtt_topic, mqtt_client_id, mqtt_protocol, mqtt_username, mqtt_password,
mqtt_tls, mqtt_ca_certs, mqtt_certfile, mqtt_keyfile (LAKEHOUSE_MQTT_* or lakehouse.toml); flags win.
"""


def _register_ingest(subparsers: argparse._SubParsersAction) -> None:
    ingest = subparsers.add_parser(
        "ingest",
        help="long-running ingestion from a message broker into the landing zone (mqtt)",
        description="Long-running ingestion from a message broker into the landing zone. "
        "For files, see `lakehouse ingest-files`.",
    )
    kinds = ingest.add_subparsers(dest="ingest_kind", required=True, metavar="KIND")
    mqtt = kinds.add_parser(
        "mqtt",
        help="bridge an MQTT broker (MQTT 5 or 3.1.1) into landing/readings",
        description=INGEST_MQTT_DESCRIPTION,
        epilog=INGEST_MQTT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_mqtt_connection_arguments(mqtt)
    mqtt.add_argument(
        "--topic",
        action="append",
        metavar="FILTER",
        help="topic filter to subscribe to; repeat for more (default sites/+/devices/+/readings)",
    )
    mqtt.add_argument(
        "--client-id",
        metavar="ID",
        help="the bridge's client id, which names its persistent session: keep it across restarts "
        "(default lakehouse-bridge)",
    )
    mqtt.add_argument(
        "--device-level",
        type=int,
        metavar="N",
        help="topic level (0-based) holding the device id (default: the + after a `devices` level)",
    )
    files = mqtt.add_argument_group("landing files (cut at whichever comes first)")
    files.add_argument("--max-file-mib", type=float, default=1.0, metavar="MIB", help="size (default 1 MiB)")
    files.add_argument(
        "--max-file-seconds",
        type=float,
        default=1.0,
        metavar="S",
        help="age of the file's first message (default 1 s; messages wait for their ack this long)",
    )
    files.add_argument(
        "--max-file-messages",
        type=int,
        default=20_000,
        metavar="N",
        help="messages (default 20,000; at most what the broker keeps in flight, <= 65,535)",
    )
    mqtt.add_argument("--for", dest="duration", metavar="DURATION", help="stop after this long, e.g. 90s, 1h")
    mqtt.set_defaults(handler=ingest_mqtt_handler)


def add_mqtt_connection_arguments(parser: argparse.ArgumentParser) -> None:
    """--broker, --protocol and the credentials (settings mqtt_*; a flag wins)."""
    group = parser.add_argument_group("MQTT broker")
    group.add_argument("--broker", metavar="HOST:PORT", help="the broker (setting mqtt_broker), e.g. localhost:1883")
    group.add_argument("--protocol", choices=("5", "3.1.1"), help="MQTT version (setting mqtt_protocol; default 5)")
    group.add_argument(
        "--username", metavar="NAME", help="username; the password comes from LAKEHOUSE_MQTT_PASSWORD (never a flag)"
    )
    group.add_argument("--tls", action="store_true", help="TLS with the system's CAs (implied by --ca-certs)")
    group.add_argument("--ca-certs", metavar="PEM", help="CA certificates to verify the broker")
    group.add_argument("--certfile", metavar="PEM", help="client certificate (AWS IoT Core, mutual TLS)")
    group.add_argument("--keyfile", metavar="PEM", help="the client certificate's private key")


def mqtt_settings(settings: Settings, args: argparse.Namespace) -> Settings:
    return settings.with_overrides(
        mqtt_broker=getattr(args, "broker", None),
        mqtt_protocol=getattr(args, "protocol", None),
        mqtt_username=getattr(args, "username", None),
        mqtt_tls="on" if getattr(args, "tls", False) else None,
        mqtt_ca_certs=getattr(args, "ca_certs", None),
        mqtt_certfile=getattr(args, "certfile", None),
        mqtt_keyfile=getattr(args, "keyfile", None),
    )


def ingest_mqtt_handler(settings: Settings, args: argparse.Namespace) -> int:
    from ingestion.mqtt_bridge import bridge_options, run_bridge
    from ingestion.mqtt_messages import MIB, CutPolicy, TopicFilter, TopicFilterError
    from lakehouse.durations import parse_seconds

    settings = mqtt_settings(settings, args).with_overrides(mqtt_client_id=args.client_id)
    try:
        topics = tuple(TopicFilter(f, device_level=args.device_level) for f in (args.topic or [settings.mqtt_topic]))
        cut = CutPolicy(
            max_bytes=int(args.max_file_mib * MIB),
            max_seconds=args.max_file_seconds,
            max_messages=args.max_file_messages,
        )
    except (TopicFilterError, ValueError) as exc:
        raise LakehouseError(f"lakehouse ingest mqtt: {exc}") from exc
    if args.max_file_messages > 65535:
        raise LakehouseError(
            f"--max-file-messages {args.max_file_messages}: a broker keeps at most 65,535 messages in flight "
            f"to one client (MQTT message ids are 16 bits); use 65535 or less"
        )
    duration = parse_seconds(args.duration, "--for") if args.duration else None
    options = bridge_options(settings, topics=topics, cut=cut, duration_s=duration)
    report = run_bridge(settings, options, echo=lambda line: print(line, flush=True))
    print(report.summary(), flush=True)
    return 0


def ingest_files_handler(settings: Settings, args: argparse.Namespace) -> int:
    from ingestion.ingest_files import ingest_files

    print(ingest_files(settings, args.source, args.paths).summary())
    return 0


def produce_stedi_handler(settings: Settings, args: argparse.Namespace) -> int:
    from ingestion.stedi import StediConfig, produce_stedi

    if args.sink != "landing":
        raise LakehouseError(
            f"--dataset stedi writes files into the lake's landing zone (local or s3://); --sink {args.sink} "
            f"is for readings. Drop --sink, or use --lake s3://bucket/prefix for S3."
        )
    try:
        config = StediConfig(customers=args.customers, seed=args.seed, **({"start": args.start} if args.start else {}))
    except ValueError as exc:
        raise LakehouseError(f"lakehouse produce --dataset stedi: {exc}") from exc
    print(produce_stedi(settings, config).summary())
    return 0


REPLAY_DESCRIPTION = """\
Replay recorded series as sensor readings: each row of a CSV or newline-delimited JSON file becomes one
reading of one device, sent through a sink (the landing zone by default) in time order.

CSV files need a header with a time column (timestamp, event_time, time, datetime, date or ts, or name it
with --time-column) and value columns; comma, semicolon or tab separated (detected), decimal commas
allowed in semicolon files. Times are ISO-8601 (naive times are UTC) or epoch seconds/milliseconds.
Each value column is mapped to a contract metric with --map; the device must be of a type that reports
that metric. seq counts from 1 per device in time order. Rows without any mapped value are skipped and
counted."""

REPLAY_EPILOG = """\
examples:
  # the NAB office temperature (degrees Fahrenheit) as environmental sensor env-00001
  lakehouse replay ../shared/datasets/nab/ambient_temperature_system_failure.csv \\
      --device env-00001 --map value=temperature_c --convert value=degF_to_degC
  # a CPU utilisation series (0-100) as a machine's vibration, an hour of recorded time per minute
  lakehouse replay ../shared/datasets/nab/cpu_utilization_asg_misconfiguration.csv \\
      --device mch-00002 --map value=vibration_mm_s --speed 60x
  # a semicolon export with several channels
  lakehouse replay export.csv --device env-00005 --time-column Zeit \\
      --map Temp=temperature_c --map Feuchte=humidity_pct --map Druck=pressure_hpa
  # NDJSON with a device column
  lakehouse replay capture.ndjson --device-column sensor --map t=temperature_c --map vib=vibration_mm_s

conversions: {conversions}
""".format(
    conversions=", ".join(
        ("degF_to_degC", "K_to_degC", "kPa_to_hPa", "Pa_to_hPa", "m_to_mm", "cm_to_mm", "fraction_to_pct", "mps2_to_g")
    )
)


def _register_replay(subparsers: argparse._SubParsersAction) -> None:
    replay = subparsers.add_parser(
        "replay",
        help="replay recorded CSV or NDJSON series as readings",
        description=REPLAY_DESCRIPTION,
        epilog=REPLAY_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    replay.add_argument("files", nargs="+", metavar="FILE", help="CSV or NDJSON files (.json, .ndjson, .jsonl)")
    source = replay.add_argument_group("rows to readings")
    who = source.add_mutually_exclusive_group(required=True)
    who.add_argument("--device", metavar="ID", help="every row is a reading of this device, e.g. env-00001")
    who.add_argument("--device-column", metavar="COLUMN", help="the column (or key) holding each row's device id")
    source.add_argument(
        "--register",
        action="store_true",
        help="register devices the catalogue does not know (needs --device-type), installed at their first reading",
    )
    source.add_argument("--device-type", metavar="TYPE", help="with --register: the catalogue type of new devices")
    source.add_argument(
        "--site", metavar="SITE_ID", help="with --register: the site of new devices (default unassigned)"
    )
    source.add_argument(
        "--map",
        action="append",
        default=[],
        type=_pair("--map", "COLUMN=METRIC"),
        metavar="COLUMN=METRIC",
        help="send COLUMN as METRIC; repeat per column (default: columns named like a metric)",
    )
    source.add_argument(
        "--convert",
        action="append",
        default=[],
        type=_pair("--convert", "COLUMN=CONVERSION"),
        metavar="COLUMN=CONVERSION",
        help="convert COLUMN's unit first, e.g. value=degF_to_degC",
    )
    source.add_argument(
        "--time-column",
        metavar="COLUMN",
        help="the time column (default: the first of timestamp, event_time, time, datetime, date, ts)",
    )
    source.add_argument(
        "--delimiter", metavar="CHAR", help="CSV separator (default: whichever of ';' ',' TAB the header has most of)"
    )
    source.add_argument(
        "--speed",
        default="max",
        metavar="FACTOR",
        help="max (default: as fast as possible) or a factor of recorded time, e.g. 60x",
    )
    source.add_argument(
        "--producer", default="replay", metavar="NAME", help="producer name, part of every file name (default replay)"
    )
    add_sink_arguments(replay)
    replay.add_argument("--quiet", action="store_true", help="print only the final report")
    replay.set_defaults(handler=replay_handler)


def replay_handler(settings: Settings, args: argparse.Namespace) -> int:
    from ingestion.replay import ReplayConfig, ReplayError, parse_speed, replay

    config = ReplayConfig(
        device_id=args.device,
        device_column=args.device_column,
        mapping=dict(args.map),
        convert=dict(args.convert),
        time_column=args.time_column,
        delimiter=args.delimiter,
        speed=parse_speed(args.speed),
        producer=args.producer,
        site_id=args.site,
        register_device_type=args.device_type if args.register else None,
    )
    if args.register and not args.device_type:
        raise ReplayError("--register needs --device-type TYPE: the catalogue type of the devices it registers")
    if args.device_type and not args.register:
        raise ReplayError(f"--device-type {args.device_type} applies to new devices only; add --register")

    def progress(readings: int, seconds: float) -> None:
        print(f"  ... {readings:,} readings sent in {seconds:,.0f} s", file=sys.stderr, flush=True)

    report = replay(
        settings, args.files, config, args.sink, sink_options(args, settings), progress=None if args.quiet else progress
    )
    print(report.summary())
    return 0


def _pair(option: str, shape: str):
    def parse(text: str) -> tuple[str, str]:
        key, sep, value = text.partition("=")
        if not sep or not key or not value:
            raise argparse.ArgumentTypeError(f"{option} {text}: use {shape}")
        return key, value

    return parse


def add_sink_arguments(parser: argparse.ArgumentParser) -> None:
    sink = parser.add_argument_group("sink")
    sink.add_argument(
        "--sink",
        choices=SINK_CHOICES,
        default="landing",
        help="where lines go: landing (files in the lake, default), s3 (the same files on an S3 "
        "prefix), kinesis (PutRecords), firehose (PutRecordBatch), mqtt (one QoS 1 message per reading "
        "on sites/<site>/devices/<device>/readings; MQTT settings as for `ingest mqtt`)",
    )
    sink.add_argument(
        "--buffer-mib",
        type=float,
        default=1.0,
        metavar="MIB",
        help="landing/s3: cut a file at this size (default 1 MiB, like Firehose)",
    )
    sink.add_argument(
        "--buffer-seconds",
        type=float,
        default=60.0,
        metavar="S",
        help="landing/s3: cut a file when its lines span this many seconds of the sending clock: "
        "simulated time for produce, wall time for a paced replay (default 60)",
    )
    sink.add_argument(
        "--s3-uri",
        metavar="URI",
        help="s3: lake root on S3, files go under <URI>/landing/readings/ (default: the lake)",
    )
    sink.add_argument(
        "--stream",
        metavar="NAME",
        help="kinesis/firehose: stream or delivery stream name (default: setting kinesis_stream or firehose_stream)",
    )
    sink.add_argument(
        "--endpoint-url",
        metavar="URL",
        help="s3/kinesis/firehose: another endpoint, e.g. a local moto (default: setting aws_endpoint_url)",
    )
    sink.add_argument(
        "--broker", metavar="HOST:PORT", help="mqtt: the broker (default: setting mqtt_broker), e.g. localhost:1883"
    )
    sink.add_argument(
        "--topic",
        metavar="PATTERN",
        help="mqtt: topic of each reading, {site} and {device} filled in "
        "(default sites/{site}/devices/{device}/readings)",
    )
    sink.add_argument(
        "--max-retry-seconds",
        type=float,
        default=120.0,
        metavar="S",
        help="kinesis/firehose: give up on a batch whose records are still rejected after S "
        "seconds of retries (default 120)",
    )


def sink_options(args: argparse.Namespace, settings: Settings | None = None):  # -> SinkOptions (imported lazily)
    """The sink's options from the flags; the stream, endpoint and region default to the settings
    (kinesis_stream / firehose_stream, aws_endpoint_url, aws_region: what `lakehouse infra outputs` writes)."""
    from ingestion.sinks import MIB, SinkOptions

    settings = settings or Settings()
    stream = args.stream or {"kinesis": settings.kinesis_stream, "firehose": settings.firehose_stream}.get(args.sink)
    return SinkOptions(
        buffer_bytes=int(args.buffer_mib * MIB),
        buffer_seconds=args.buffer_seconds,
        s3_uri=args.s3_uri,
        stream=stream,
        endpoint_url=args.endpoint_url or settings.aws_endpoint_url,
        region=settings.aws_region,
        max_retry_seconds=args.max_retry_seconds,
        mqtt_broker=args.broker,
        mqtt_topic=args.topic,
    )


def produce_handler(settings: Settings, args: argparse.Namespace) -> int:
    if args.dataset == "stedi":
        return produce_stedi_handler(settings, args)
    from ingestion.produce import produce
    from ingestion.simulator import FleetConfig

    fault_rates = dict.fromkeys(DEFAULT_FAULT_RATES, 0.0) if args.no_faults else dict(DEFAULT_FAULT_RATES)
    fault_rates.update(dict(args.fault_rate))
    kwargs = {}
    if args.dirty_kinds:
        kwargs["dirty_kinds"] = dict.fromkeys(args.dirty_kinds, 1.0)
    try:
        config = FleetConfig(
            devices=args.devices,
            readings=args.readings,
            duration=args.duration,
            start=args.start,
            seed=args.seed,
            dirty_rate=args.dirty_rate,
            fault_rates=fault_rates,
            producer=args.producer,
            **kwargs,
        )
    except ValueError as exc:
        raise LakehouseError(f"lakehouse produce: {exc}") from exc

    def progress(readings: int, lines: int, seconds: float) -> None:
        print(
            f"  ... {readings:,} readings, {lines:,} lines sent, {readings / seconds:,.0f} readings/s",
            file=sys.stderr,
            flush=True,
        )

    report = produce(
        settings,
        config,
        args.sink,
        sink_options(args, settings),
        rate=args.rate,
        progress=None if args.quiet else progress,
    )
    print(report.summary())
    print(
        f"  reproduce with  lakehouse produce --devices {report.devices} "
        f"{'--readings ' + str(report.readings) if args.duration is None else '--duration ' + _fmt(args.duration)}"
        f" --seed {report.seed} --start {report.start.replace('+00:00', 'Z')}"
    )
    return 0


def parse_duration(text: str) -> timedelta:
    """``--duration`` as argparse reads it, in the grammar of every command (lakehouse/durations.py)."""
    from lakehouse.durations import DurationError
    from lakehouse.durations import parse_duration as parse

    try:
        return parse(text, "--duration")
    except DurationError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def parse_time(text: str) -> datetime:
    """ISO-8601; ``Z`` or an offset is honoured, a naive time is UTC."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not an ISO-8601 time; use e.g. 2025-01-01T00:00:00Z") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _kind_list(known: tuple[str, ...]):
    def parse(text: str) -> list[str]:
        kinds = [k.strip() for k in text.split(",") if k.strip()]
        unknown = [k for k in kinds if k not in known]
        if unknown or not kinds:
            raise argparse.ArgumentTypeError(f"unknown kind(s) {unknown or [text]}; choose from: {', '.join(known)}")
        return kinds

    return parse


def _fault_rate(text: str) -> tuple[str, float]:
    kind, sep, rate = text.partition("=")
    if not sep or kind not in FAULT_KINDS:
        raise argparse.ArgumentTypeError(
            f"'{text}': use KIND=RATE with KIND one of {', '.join(FAULT_KINDS)}, e.g. spike=0.1"
        )
    try:
        value = float(rate)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}': RATE must be a number of faults per device-hour") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"'{text}': RATE must be >= 0")
    return kind, value


def _fmt(duration: timedelta) -> str:
    return f"{duration.total_seconds():g}s"
