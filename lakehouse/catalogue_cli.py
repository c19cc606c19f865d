"""``lakehouse catalog``: the user's device types, metrics and devices (see lakehouse/catalogue.py)."""

from __future__ import annotations

import argparse

from lakehouse.catalogue import IMPORT_HELP, KINDS, CatalogueError, parse_time
from lakehouse.config import Settings

DESCRIPTION = """\
The catalogue says which devices exist, of which type, where and since when, and what each metric's unit,
valid range and alert limits are. It is data kept in the lake (<lake>/catalogue/), versioned: every import
is a new version whose rows are in force from their valid_from event time; nothing is overwritten, and
silver judges each reading by the version in force at its event time. A new lake starts with the
simulator's fleet as its default catalogue."""

IMPORT_EPILOG = f"""\
{IMPORT_HELP}

An import is checked as a whole (every problem is listed with its file and line) and applied atomically,
or not at all. Rows equal to what is in force are left out; importing the same file twice changes nothing.
A row for a key the catalogue does not know is in force since always; a changed row from now, or from
--effective-from / its valid_from. Silver classifies readings when they arrive: after a change that
concerns readings already in silver, run `lakehouse backfill --from D --to D` over their dates.

examples:
  lakehouse catalog import my_fleet.csv
  aws iot list-things > things.json && lakehouse catalog import things.json
  lakehouse catalog import limits.csv --effective-from 2026-03-01T00:00:00Z
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    catalog = subparsers.add_parser(
        "catalog",
        help="the catalogue of device types, metrics and devices: import, list, show",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = catalog.add_subparsers(dest="catalog_command", required=True, metavar="SUBCOMMAND")
    imp = commands.add_parser(
        "import",
        help="import CSV or JSON files as one new catalogue version",
        description="Import device types, metrics and devices from CSV or JSON files as one new version.",
        epilog=IMPORT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    imp.add_argument("files", nargs="+", metavar="FILE", help="CSV or JSON catalogue files")
    imp.add_argument(
        "--effective-from",
        metavar="TIME",
        help="event time from which the imported rows are in force (ISO-8601, naive = UTC); default: see below",
    )
    imp.set_defaults(handler=_import)
    lst = commands.add_parser(
        "list",
        help="list what is in force (device types, metrics, devices)",
        description="List the catalogue's entries in force at an event time (default: now).",
        epilog="examples:\n  lakehouse catalog list\n  lakehouse catalog list --kind device\n"
        "  lakehouse catalog list --at 2013-07-04\n  lakehouse catalog list --history",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    lst.add_argument("--kind", choices=KINDS, help="only this kind of entry")
    lst.add_argument("--at", metavar="TIME", help="the entries in force at this event time (default: now)")
    lst.add_argument("--history", action="store_true", help="every version, with what it brought")
    lst.set_defaults(handler=_list)
    show = commands.add_parser(
        "show",
        help="one device: its entry, its type, its metrics and limits, its history",
        description="Show one device as silver judges it: type, site, install date, metrics and limits.",
        epilog="examples:\n  lakehouse catalog show mch-00002\n  lakehouse catalog show nab-0001 --at 2013-12-01",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    show.add_argument("device", metavar="DEVICE", help="a device id, e.g. env-00001")
    show.add_argument("--at", metavar="TIME", help="as in force at this event time (default: now)")
    show.set_defaults(handler=_show)


def _time(text: str | None, option: str):
    if text is None:
        return None
    try:
        return parse_time(text)
    except ValueError:
        raise CatalogueError(f"{option} {text!r} is not a time; write e.g. 2026-03-01 or 2026-03-01T12:00Z") from None


def _import(settings: Settings, args: argparse.Namespace) -> int:
    from lakehouse.catalogue_store import import_files

    report = import_files(settings, args.files, effective_from=_time(args.effective_from, "--effective-from"))
    print(report.summary())
    return 0


def _list(settings: Settings, args: argparse.Namespace) -> int:
    from lakehouse.catalogue_store import describe, ensure_catalogue, in_force, utc_now

    versions = ensure_catalogue(settings)
    if args.history:
        for version in versions:
            sources = sorted({e.source.rsplit(":", 1)[0] for e in version.entries})
            print(
                f"version {version.version}  recorded {version.recorded_at:%Y-%m-%d %H:%M:%S}  "
                f"{len(version.entries)} row(s) from {', '.join(sources[:3])}{' ...' if len(sources) > 3 else ''}"
            )
            for entry in version.entries[:50]:
                if args.kind in (None, entry.kind):
                    print(f"  {entry.kind:<12} {describe(entry)}")
            if len(version.entries) > 50:
                print(f"  ... {len(version.entries) - 50} more")
        return 0
    at = _time(args.at, "--at") or utc_now()
    for kind in KINDS:
        if args.kind not in (None, kind):
            continue
        entries = in_force(versions, kind, at)
        print(f"{kind.replace('_', ' ')}s in force at {at:%Y-%m-%d %H:%M:%S} ({len(entries)}):")
        for key in sorted(entries):
            print(f"  {describe(entries[key])}")
    return 0


def _show(settings: Settings, args: argparse.Namespace) -> int:
    from lakehouse.catalogue_store import describe, ensure_catalogue, in_force, utc_now

    versions = ensure_catalogue(settings)
    at = _time(args.at, "--at") or utc_now()
    device = in_force(versions, "device", at).get(("device", args.device))
    if device is None:
        raise CatalogueError(
            f"device {args.device} is not in the catalogue at {at:%Y-%m-%d %H:%M:%S}; see `lakehouse catalog list "
            f"--kind device`, or register it: `lakehouse catalog import devices.csv` with a row "
            f"device_id,device_type,site_id,installed_at"
        )
    device_type = device.get("device_type")
    print(f"device      {describe(device)}")
    kind = in_force(versions, "device_type", at).get(("device_type", device_type))
    if kind is not None:
        print(f"type        {describe(kind)}")
    metrics = in_force(versions, "metric", at)
    for key in sorted(metrics):
        if key[1] == device_type and key[2] in ("", args.device):
            print(f"metric      {describe(metrics[key])}")
    print("history:")
    for version in versions:
        for entry in version.entries:
            if entry.key == ("device", args.device) or (entry.kind == "metric" and entry.key[2] == args.device):
                print(f"  version {version.version} ({version.recorded_at:%Y-%m-%d %H:%M:%S}): {describe(entry)}")
    return 0
