"""A STEDI-shaped dataset with known answers: customers, their phones' accelerometer, their step trainers.

``generate(StediConfig(...))`` is pure (no clock, no files): the same config gives the same lines, byte for
byte. :func:`produce_stedi` hands them to the landing zone (:class:`ingestion.ingest_files.LandingFolder`:
atomic, content-addressed, never overwriting) and writes the answers to ``<lake>/landing/_stedi_answers.json``
(the ``_`` keeps it out of bronze). ``lakehouse produce --dataset stedi`` runs it.

The three sources (contracts in :mod:`lakehouse.source_contracts`), with the quirks of the real thing:

- customer: one record per customer, and a second, earlier record (smaller ``lastUpdateDate``) for every
  fourth customer (``i % 4 == 0``) whose research consent differs from the latest one's: consent then
  withdrawn (the latest has none), no consent yet (``(i // 4) % 2 == 0``), or consent at an earlier time
  (the latest record's time is the one that counts); research consent sent as an integer, as a float
  (``1655564376361.0``), as an explicit ``null`` or not at all; public / friends consent likewise; birth
  days with four-digit years and with three-digit years (``"0399-01-01"``, ``"399-01-01"``);
- accelerometer: ``readings_per_session`` readings per customer, ``interval_ms`` apart, starting at the
  customer's session start; some values sent as integers, some lines spell the key ``timeStamp``; a few
  readings of e-mails that belong to no customer (at the times of customer 0's readings);
- step_trainer: one reading at each of the customer's accelerometer times, plus ``extra_step_readings``
  half an interval after the first ones (no accelerometer reading at that time); a few devices whose serial
  number belongs to no customer (at the times of customer 0's readings);
- customers ``i`` with ``i % 6`` in (1, 4) start their session at the same millisecond as customer
  ``i - 1``: their readings share timestamps, so a join on time alone would pair strangers;
- consent (research, of the customer's latest record) cycles with ``i % 6`` through: before the session
  (integer), before the session (float), exactly at the ``readings_per_session // 2``-th reading (the
  readings before it are "before consent"; the one at it is not), after the session, absent, ``null``;
- every source's lines are shuffled (not in time order) and split over a few files.

Every line is valid: bronze lands all of them and quarantines none.

Known answers (``answers["policies"][policy][model]`` row counts, computed while generating from what each
customer was given, not by running these definitions). With ``latest`` = the customer record with the
largest ``last_update_date_ms`` per ``email`` and ``consent_ms`` = its ``share_with_research_as_of_date_ms``:

- ``customer_trusted``: the latest records whose ``consent_ms`` is not null (one row per e-mail);
- ``accelerometer_trusted``: accelerometer readings whose ``user_email`` is a trusted customer's e-mail;
  under ``since_consent`` only those with ``timestamp_ms >= consent_ms`` (under ``any_time`` all);
- ``customers_curated``: trusted customers with at least one ``accelerometer_trusted`` reading (so it
  depends on the policy);
- ``step_trainer_trusted``: step-trainer readings whose ``serial_number`` is a curated customer's; under
  ``since_consent`` only those with ``sensor_reading_time_ms >= consent_ms`` of that customer;
- ``machine_learning_curated``: one row per pair of a ``step_trainer_trusted`` reading and an
  ``accelerometer_trusted`` reading of the *same customer* (serial number and e-mail of one customer
  record) with ``sensor_reading_time_ms = timestamp_ms``.

``answers["contents"][policy]`` lists the e-mails of ``customer_trusted`` and ``customers_curated``;
``answers["landing"][source]`` the lines and files of each source (all of them land in bronze).
"""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from lakehouse.config import Settings
from lakehouse.errors import LakehouseError
from lakehouse.source_contracts import SOURCES

CONSENT_POLICIES = ("since_consent", "any_time")
MODELS = (
    "customer_trusted",
    "accelerometer_trusted",
    "customers_curated",
    "step_trainer_trusted",
    "machine_learning_curated",
)
# Research consent of a customer's latest record, by i % 6.
CONSENT_KINDS = ("before_int", "before_float", "at_mid_session", "after_session", "absent", "null")
SHARED_START = (1, 4)  # i % 6 of customers whose session starts with customer i - 1's
ANSWERS_FILE = ("landing", "_stedi_answers.json")
FILES_PER_SOURCE = {"customer": 2, "accelerometer": 3, "step_trainer": 3}
DAY_MS = 86_400_000

_FIRST = ("Santosh", "Frank", "Sarah", "Jerry", "Spencer", "Liz", "Chris", "Kate", "Ben", "Danny", "Lyn", "Max")
_LAST = ("Clayton", "Doshi", "Lincoln", "Abram", "Davis", "Habschied", "Jones", "Hansen", "Fibonnaci", "Mitra")


@dataclass(frozen=True)
class StediConfig:
    customers: int = 30
    seed: int = 0
    start: datetime = datetime(2022, 6, 18, 10, 0, tzinfo=UTC)  # the first session's start (UTC)
    readings_per_session: int = 10
    interval_ms: int = 500
    session_gap_ms: int = 60_000  # between the starts of consecutive sessions
    extra_step_readings: int = 2
    orphan_devices: int = 2  # step trainers of no customer
    stranger_readings: int = 3  # accelerometer readings of e-mails of no customer

    def __post_init__(self) -> None:
        if self.customers < 1:
            raise ValueError(f"customers={self.customers}: must be at least 1")
        if self.readings_per_session < 2:
            raise ValueError(f"readings_per_session={self.readings_per_session}: must be at least 2")
        if not 0 <= self.extra_step_readings <= self.readings_per_session:
            raise ValueError(f"extra_step_readings={self.extra_step_readings}: must be 0..readings_per_session")
        if self.interval_ms < 2 or self.session_gap_ms <= self.readings_per_session * self.interval_ms:
            raise ValueError("session_gap_ms must be longer than a session (readings_per_session * interval_ms)")
        if self.start.tzinfo is None:
            object.__setattr__(self, "start", self.start.replace(tzinfo=UTC))


@dataclass
class StediDataset:
    config: StediConfig
    lines: dict[str, list[str]]  # source -> lines, shuffled
    answers: dict[str, Any]
    files: dict[str, list[list[str]]] = field(default_factory=dict)  # source -> lines of each file


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _dumps(record: dict[str, Any]) -> str:
    return json.dumps(record, separators=(",", ":"))


def _birth_day(rng: random.Random, i: int) -> str:
    month, day = rng.randint(1, 12), rng.randint(1, 28)
    if i % 5 == 2:
        return f"{rng.randint(100, 999):04d}-{month:02d}-{day:02d}"  # three-digit year, zero-padded
    if i % 5 == 3:
        return f"{rng.randint(100, 999)}-{month:02d}-{day:02d}"  # three-digit year as typed
    return f"{rng.randint(1930, 2004)}-{month:02d}-{day:02d}"


def _optional_consent(rng: random.Random, record: dict[str, Any], key: str, around_ms: int) -> None:
    choice = rng.randrange(4)
    if choice == 1:
        record[key] = None
    elif choice == 2:
        record[key] = around_ms - rng.randint(0, 30) * DAY_MS
    elif choice == 3:
        record[key] = float(around_ms - rng.randint(0, 30) * DAY_MS)
    # choice 0: the key is absent


def _set_research(record: dict[str, Any], consent: int | None, kind: str) -> None:
    if kind == "absent":
        return
    if consent is None:
        record["shareWithResearchAsOfDate"] = None
    else:
        record["shareWithResearchAsOfDate"] = float(consent) if kind == "before_float" else consent


def generate(config: StediConfig) -> StediDataset:
    """The three sources' lines and their known answers; pure and deterministic."""
    rng = random.Random(config.seed)
    n_read, step = config.readings_per_session, config.interval_ms
    mid = n_read // 2
    first_start = _ms(config.start)
    customers: list[str] = []
    accelerometer: list[str] = []
    step_trainer: list[str] = []
    counts = {policy: dict.fromkeys(MODELS, 0) for policy in CONSENT_POLICIES}
    contents: dict[str, dict[str, list[str]]] = {
        policy: {"customer_trusted": [], "customers_curated": []} for policy in CONSENT_POLICIES
    }
    starts: list[int] = []
    for i in range(config.customers):
        kind = CONSENT_KINDS[i % len(CONSENT_KINDS)]
        start = starts[-1] if i % 6 in SHARED_START and starts else first_start + i * config.session_gap_ms
        starts.append(start)
        end = start + (n_read - 1) * step
        first, last = _FIRST[rng.randrange(len(_FIRST))], _LAST[rng.randrange(len(_LAST))]
        email = f"{first}.{last}.{i}@test.com"
        serial = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        registered = start - rng.randint(60, 365) * DAY_MS - rng.randint(0, DAY_MS)
        consent = {
            "before_int": start - rng.randint(1, 30) * DAY_MS,
            "before_float": start - rng.randint(1, 30) * DAY_MS,
            "at_mid_session": start + mid * step,
            "after_session": end + 60_000,
            "absent": None,
            "null": None,
        }[kind]
        updated = max(registered, consent or registered, start - DAY_MS) + rng.randint(1, 3_600_000)
        latest = {
            "customerName": f"{first} {last}",
            "email": email,
            "phone": f"801555{rng.randint(0, 9999):04d}",
            "birthDay": _birth_day(rng, i),
            "serialNumber": serial,
            "registrationDate": registered,
            "lastUpdateDate": updated,
        }
        _set_research(latest, consent, kind)
        _optional_consent(rng, latest, "shareWithPublicAsOfDate", updated)
        _optional_consent(rng, latest, "shareWithFriendsAsOfDate", updated)
        customers.append(_dumps(latest))
        if i % 4 == 0:  # an earlier record whose consent differs from the latest
            earlier = dict(latest, lastUpdateDate=updated - rng.randint(1, 20) * DAY_MS)
            if consent is None:
                earlier["shareWithResearchAsOfDate"] = registered + DAY_MS  # consented, then withdrew
            elif (i // 4) % 2 == 0:
                earlier.pop("shareWithResearchAsOfDate", None)  # no consent yet
            else:
                earlier["shareWithResearchAsOfDate"] = registered  # consented earlier; the latest time counts
            customers.append(_dumps(earlier))

        times = [start + j * step for j in range(n_read)]
        for j, t in enumerate(times):
            reading: dict[str, Any] = {"user": email, "timestamp": t}
            if (i + j) % 7 == 3:
                reading = {"user": email, "timeStamp": t}  # the spelling of some app versions
            for axis in "xyz":
                value = round(rng.uniform(-2, 2), 1)
                reading[axis] = int(value) if (i + j) % 5 == 0 else value
            accelerometer.append(_dumps(reading))
        extra_times = [start + j * step + step // 2 for j in range(config.extra_step_readings)]
        for j, t in enumerate(times + extra_times):
            distance: int | float = rng.randint(150, 300)
            if (i + j) % 4 == 0:
                distance = float(distance) + 0.5
            step_trainer.append(
                _dumps({"sensorReadingTime": t, "serialNumber": serial, "distanceFromObject": distance})
            )

        if consent is None:
            continue
        for policy in CONSENT_POLICIES:
            floor = consent if policy == "since_consent" else None
            accel = sum(1 for t in times if floor is None or t >= floor)
            counts[policy]["customer_trusted"] += 1
            contents[policy]["customer_trusted"].append(email)
            counts[policy]["accelerometer_trusted"] += accel
            if accel == 0:
                continue
            counts[policy]["customers_curated"] += 1
            contents[policy]["customers_curated"].append(email)
            counts[policy]["step_trainer_trusted"] += sum(1 for t in times + extra_times if floor is None or t >= floor)
            counts[policy]["machine_learning_curated"] += accel  # each kept reading time has one step reading

    for k in range(config.orphan_devices):
        serial = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        for t in (first_start + j * step for j in range(n_read)):
            step_trainer.append(_dumps({"sensorReadingTime": t, "serialNumber": serial, "distanceFromObject": 200 + k}))
    for k in range(config.stranger_readings):
        accelerometer.append(
            _dumps(
                {"user": f"Stranger.{k}@test.com", "timestamp": first_start + k * step, "x": 0.1, "y": 0.2, "z": 0.3}
            )
        )

    lines = {"customer": customers, "accelerometer": accelerometer, "step_trainer": step_trainer}
    files: dict[str, list[list[str]]] = {}
    for source, source_lines in lines.items():
        rng.shuffle(source_lines)
        parts = min(FILES_PER_SOURCE[source], len(source_lines))
        size = -(-len(source_lines) // parts)
        files[source] = [source_lines[p : p + size] for p in range(0, len(source_lines), size)]
    for policy in CONSENT_POLICIES:
        for model in contents[policy]:
            contents[policy][model].sort()
    answers = {
        "dataset": "stedi",
        "config": {**asdict(config), "start": config.start.isoformat()},
        "landing": {
            source: {"lines": len(source_lines), "files": len(files[source]), "bronze_rows": len(source_lines)}
            for source, source_lines in lines.items()
        },
        "policies": counts,
        "contents": contents,
    }
    return StediDataset(config=config, lines=lines, answers=answers, files=files)


# ---- the edge: into the landing zone ---------------------------------------------------------------------
@dataclass
class StediReport:
    answers_uri: str
    answers: dict[str, Any]
    landed: dict[str, list[Any]]  # source -> LandedFile of each file
    seconds: float

    def summary(self) -> str:
        out = [f"produced a STEDI dataset of {self.answers['config']['customers']} customers "
               f"(seed {self.answers['config']['seed']}) in {self.seconds:.1f} s"]  # fmt: skip
        for source, files in self.landed.items():
            copied = sum(1 for f in files if f.copied)
            out.append(
                f"  {source:<14} {sum(f.lines for f in files):>7,} lines in {len(files)} file(s)"
                f"{'' if copied == len(files) else f' ({len(files) - copied} already landed)'}"
            )
        out.append(f"  known answers  {self.answers_uri}")
        out.append(f"    {'model':<26} {'since_consent':>13} {'any_time':>9}")
        policies = self.answers["policies"]
        for model in MODELS:
            out.append(f"    {model:<26} {policies['since_consent'][model]:>13,} {policies['any_time'][model]:>9,}")
        return "\n".join(out)


def answers_uri(settings: Settings) -> str:
    return settings.lake_root.uri(*ANSWERS_FILE)


def read_answers(settings: Settings) -> dict[str, Any]:
    """The known answers of the STEDI dataset in ``settings``' lake."""
    from ingestion.ingest_files import landing_storage

    uri = answers_uri(settings)
    storage = landing_storage(settings)
    if not storage.exists(uri):
        raise LakehouseError(f"{uri} does not exist; run `lakehouse produce --dataset stedi` on this lake first")
    return json.loads(storage.read_bytes(uri))


def produce_stedi(settings: Settings, config: StediConfig) -> StediReport:
    """Generate ``config`` into the landing zone of ``settings``' lake and write the known answers.

    A lake holds one STEDI dataset: producing the same config again lands nothing new; another config on
    a lake that has answers already is an error (the answers would no longer hold)."""
    import time

    from ingestion.ingest_files import LandingFolder, landing_storage

    began = time.perf_counter()
    dataset = generate(config)
    storage = landing_storage(settings)
    uri = answers_uri(settings)
    answers_bytes = (json.dumps(dataset.answers, indent=1) + "\n").encode()
    if storage.exists(uri) and storage.read_bytes(uri) != answers_bytes:
        raise LakehouseError(
            f"{uri} holds the answers of another STEDI dataset; a lake holds one (its answers would no longer "
            f"hold). Produce into a fresh lake (--lake), or use the same --customers and --seed."
        )
    hour = config.start.replace(minute=0, second=0, microsecond=0)
    landed: dict[str, list[Any]] = {}
    for source in SOURCES:
        folder = LandingFolder(settings, source, storage)
        landed[source] = [
            folder.land(
                "".join(line + "\n" for line in part).encode(),
                f"{source}-stedi-s{config.seed}-{n:02d}",
                hour,
                origin=f"stedi seed {config.seed} file {n}",
            )
            for n, part in enumerate(dataset.files[source], start=1)
        ]
    storage.write_bytes(uri, answers_bytes)
    return StediReport(answers_uri=uri, answers=dataset.answers, landed=landed, seconds=time.perf_counter() - began)
