"""Source contracts: one per kind of file a product drops into the landing zone besides sensor readings.

The readings contract (:mod:`lakehouse.contract`) describes one device reading. Some products send other
records too; the STEDI-shaped balance-training product (``lakehouse produce --dataset stedi``) sends three:

- ``customer``: customer records from a website, with optional research / public / friends consent dates;
- ``accelerometer``: accelerometer readings from a phone app, keyed by the customer's e-mail;
- ``step_trainer``: distance readings of a step-trainer motion sensor, keyed by its serial number.

Each source is written down once, as a :class:`SourceContract`: which JSON keys it has, the bronze column
each key becomes, its type, whether it is required, and which key dates the record (``event_date``).
The Spark parse (:mod:`spark.source_transform`), the bronze job, ``lakehouse ingest-files``, the simulator and the
gates read everything about a source from here.

Types as sent and as stored:

- ``string``: stored as sent. A JSON number or boolean in a string key is kept as its JSON text (``"phone":
  8015551212`` -> ``"8015551212"``), as for readings; ``birthDay`` keeps dates like ``"0399-01-01"``.
- ``double``: a JSON number (integer or not) -> ``double``.
- ``epoch_ms``: epoch milliseconds (UTC) as a JSON integer or float (``1655564376361`` or
  ``1655564376361.0``) -> ``bigint`` (a fraction of a millisecond is dropped). A JSON string is a
  type mismatch.

An absent key and an explicit ``null`` are the same: the column is null. Keys a contract does not know
are kept in ``_rescued_data`` (a JSON object of their values as text, or null when there are none).

Quarantine reasons (the codes of :data:`lakehouse.contract.QUARANTINE_REASONS`; the part after ":" names
the *source key*, as the producer spelled it): ``empty_line``, ``malformed_json``,
``missing_required:<key>`` (a required key absent or null), ``type_mismatch:<key>`` (e.g. a string where a
number belongs, or epoch milliseconds beyond what a ``bigint`` holds) and
``impossible_timestamp:<key>`` (the key that dates the record is before 2000-01-01 or from 2100-01-01
on, UTC: a phone clock reset to 1970, or seconds sent where milliseconds belong).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

from lakehouse.contract import BRONZE_METADATA_COLUMNS, EARLIEST_EVENT_TIME, LATEST_EVENT_TIME
from lakehouse.errors import LakehouseError

SourceType = Literal["string", "double", "epoch_ms"]

# The bronze type of each source type (Spark SQL names; DuckDB and Athena read them as the same).
BRONZE_TYPES: dict[str, str] = {"string": "string", "double": "double", "epoch_ms": "bigint"}

EARLIEST_EVENT_MS = int(EARLIEST_EVENT_TIME.timestamp() * 1000)
LATEST_EVENT_MS = int(LATEST_EVENT_TIME.timestamp() * 1000)


@dataclass(frozen=True)
class SourceField:
    key: str  # the JSON key as the producer sends it
    column: str  # the bronze column (snake_case; epoch milliseconds end in _ms)
    type: SourceType
    required: bool
    description: str
    aliases: tuple[str, ...] = ()  # other spellings some producers use; the first key present wins

    @property
    def bronze_type(self) -> str:
        return BRONZE_TYPES[self.type]

    @property
    def keys(self) -> tuple[str, ...]:
        return (self.key, *self.aliases)


@dataclass(frozen=True)
class SourceContract:
    name: str
    description: str
    fields: tuple[SourceField, ...]  # order = bronze column order
    event_key: str  # the epoch_ms key whose UTC date is the event_date partition
    schema_version: int = 1

    def __post_init__(self) -> None:
        by_key = {f.key: f for f in self.fields}
        if self.event_key not in by_key or by_key[self.event_key].type != "epoch_ms":
            raise ValueError(f"source {self.name}: event_key {self.event_key!r} must name an epoch_ms field")
        if not by_key[self.event_key].required:
            raise ValueError(f"source {self.name}: event_key {self.event_key!r} must be required")
        keys = [k for f in self.fields for k in f.keys]
        if len(keys) != len(set(keys)):
            raise ValueError(f"source {self.name}: a key or alias appears twice in {keys}")

    @property
    def job(self) -> str:
        """The bronze job's name: its checkpoint is ``_checkpoints/<job>/``, its manifests ``_manifests/<job>/``."""
        return f"bronze_{self.name}"

    @property
    def keys(self) -> tuple[str, ...]:
        """Every key the contract knows (aliases included): anything else goes to ``_rescued_data``."""
        return tuple(k for f in self.fields for k in f.keys)

    @property
    def required_keys(self) -> tuple[str, ...]:
        return tuple(f.key for f in self.fields if f.required)

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(f.column for f in self.fields)

    @property
    def event_field(self) -> SourceField:
        return self.field(self.event_key)

    def field(self, key: str) -> SourceField:
        for f in self.fields:
            if f.key == key:
                return f
        raise KeyError(f"source {self.name} has no key {key!r}; keys: {', '.join(f.key for f in self.fields)}")

    def bronze_columns(self) -> tuple[tuple[str, str], ...]:
        """(column, type) of a bronze row: the contract columns, then the metadata, then ``event_date``."""
        return (
            *((f.column, f.bronze_type) for f in self.fields),
            *zip(BRONZE_METADATA_COLUMNS, ("string", "timestamp_ntz", "string", "bigint", "int"), strict=True),
            ("event_date", "date"),
        )


CUSTOMER = SourceContract(
    name="customer",
    description="Customer records from the product's website; a customer is keyed by e-mail and may be "
    "sent again with a later lastUpdateDate (the latest record is the customer's state).",
    fields=(
        SourceField("customerName", "customer_name", "string", False, "The customer's name."),
        SourceField("email", "email", "string", True, "The customer's e-mail: the customer key."),
        SourceField("phone", "phone", "string", False, "Phone number, as sent."),
        SourceField("birthDay", "birth_day", "string", False, "Birth date as sent, e.g. 1959-06-12 or 0399-01-01."),
        SourceField("serialNumber", "serial_number", "string", True, "Serial number of the customer's step trainer."),
        SourceField("registrationDate", "registration_date_ms", "epoch_ms", True, "When the customer registered."),
        SourceField("lastUpdateDate", "last_update_date_ms", "epoch_ms", True, "When this record was last updated."),
        SourceField(
            "shareWithResearchAsOfDate",
            "share_with_research_as_of_date_ms",
            "epoch_ms",
            False,
            "Since when the customer agreed to share data for research; absent or null: no consent.",
        ),
        SourceField(
            "shareWithPublicAsOfDate",
            "share_with_public_as_of_date_ms",
            "epoch_ms",
            False,
            "Since when the customer agreed to share data publicly; absent or null: no consent.",
        ),
        SourceField(
            "shareWithFriendsAsOfDate",
            "share_with_friends_as_of_date_ms",
            "epoch_ms",
            False,
            "Since when the customer agreed to share data with friends; absent or null: no consent.",
        ),
    ),
    event_key="lastUpdateDate",
)

ACCELEROMETER = SourceContract(
    name="accelerometer",
    description="Accelerometer readings of the phone app during a balance exercise, keyed by the user's e-mail.",
    fields=(
        SourceField("user", "user_email", "string", True, "The customer's e-mail (customer.email)."),
        SourceField(
            "timestamp",
            "timestamp_ms",
            "epoch_ms",
            True,
            "When the phone took the reading. Some app versions spell the key timeStamp.",
            aliases=("timeStamp",),
        ),
        SourceField("x", "x", "double", True, "Acceleration along x."),
        SourceField("y", "y", "double", True, "Acceleration along y."),
        SourceField("z", "z", "double", True, "Acceleration along z."),
    ),
    event_key="timestamp",
)

STEP_TRAINER = SourceContract(
    name="step_trainer",
    description="Readings of the step trainer's motion sensor, keyed by the device's serial number.",
    fields=(
        SourceField("sensorReadingTime", "sensor_reading_time_ms", "epoch_ms", True, "When the sensor read."),
        SourceField("serialNumber", "serial_number", "string", True, "The step trainer's serial number."),
        SourceField(
            "distanceFromObject", "distance_from_object", "double", True, "Distance to the nearest object (as sent)."
        ),
    ),
    event_key="sensorReadingTime",
)

SOURCES: dict[str, SourceContract] = {c.name: c for c in (CUSTOMER, ACCELEROMETER, STEP_TRAINER)}


def get_source(name: str) -> SourceContract:
    """The contract of source ``name``; a clear error for a name we do not know."""
    try:
        return SOURCES[name]
    except KeyError:
        raise LakehouseError(
            f"unknown source '{name}'; choose one of: {', '.join(SOURCES)} (readings have their own contract)"
        ) from None


def event_date_of(ms: int) -> str:
    """The ``event_date`` partition (UTC date, ISO) of epoch milliseconds, as bronze computes it."""
    return (date(1970, 1, 1) + timedelta(days=ms // 86_400_000)).isoformat()
