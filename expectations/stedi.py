"""STEDI gate: the three sources of the balance-training product (issue 9), as the silver step reads them.

Validated with the silver gate, on the staging views the silver step builds over bronze
(``staging.stg_bronze__customer``, ``__accelerometer``, ``__step_trainer``); skipped while a lake has no
STEDI data. Exact copies of a row (a retried batch, a re-landed file) are expected in bronze, so every
frame reads the distinct rows.

``silver__stedi_customer``: the key fields present; one version of a customer per ``last_update_date_ms``
(warning: customer_trusted keeps the later ingest); research, public and friends consent dates not before
the registration (error: a consent dated before the account existed cannot be right, and under the
``since_consent`` policy it would admit readings the customer never agreed to share); a step trainer's
serial number in one customer's latest record only (warning: machine_learning_curated still pairs each
owner with their own readings, see models/trusted).

``silver__stedi_accelerometer`` / ``silver__stedi_step_trainer``: key fields present; one reading per key
(warning: the trusted models keep the latest ingest); and referential integrity: every reading's user is a
customer, every step trainer's serial number is some customer's. Both are warnings: the trusted models
drop such readings (they cannot belong to a consenting customer), and in a stream a reading may land
before the customer record that it refers to.

Privacy: the frames carry no name, phone or birth date, and e-mails are replaced by a rank
(``customer_ref``, ``user_ref``: equal e-mails, equal ranks, only within one frame), so that failure samples
in ``ops_gate_results``, alerts and Data Docs never show personal data. Portable SQL (DuckDB and Trino),
subqueries rather than WITH (GX query assets must start with SELECT).
"""

from __future__ import annotations

from dataclasses import dataclass

import great_expectations.expectations as gxe

from expectations.config import GateConfig
from expectations.suites import SuiteSpec

CUSTOMER_SUITE = "silver__stedi_customer"
ACCELEROMETER_SUITE = "silver__stedi_accelerometer"
STEP_TRAINER_SUITE = "silver__stedi_step_trainer"

CUSTOMER_VIEW = "staging.stg_bronze__customer"
ACCELEROMETER_VIEW = "staging.stg_bronze__accelerometer"
STEP_TRAINER_VIEW = "staging.stg_bronze__step_trainer"

CONSENTS = ("research", "public", "friends")
CUSTOMER_COLUMNS = (
    "customer_ref",
    "serial_number",
    "registration_date_ms",
    "last_update_date_ms",
    *(f"share_with_{c}_as_of_date_ms" for c in CONSENTS),
)
ACCELEROMETER_COLUMNS = ("user_ref", "timestamp_ms", "x", "y", "z")
STEP_TRAINER_COLUMNS = ("serial_number", "sensor_reading_time_ms", "distance_from_object")

SERIAL_SHARED = "chk_customers_sharing_serial"  # on a latest record: how many customers have its serial
UNKNOWN_USER = "chk_reading_of_unknown_user"  # timestamp_ms of a reading whose user is no customer
UNKNOWN_SERIAL = "chk_reading_of_unknown_serial"  # sensor_reading_time_ms of a reading of nobody's device


def consent_lead_column(consent: str) -> str:
    """The derived column: consent date minus registration date (ms), where the consent is earlier."""
    return f"chk_{consent}_consent_before_registration_ms"


@dataclass(frozen=True)
class Frame:
    suite: str
    view: str  # the staging view the frame reads (and whose presence turns the suite on)
    sql: str


def customer_sql(customer_view: str) -> str:
    """Distinct customer records, e-mail replaced by a rank, with consent and shared-serial checks."""
    consent_checks = ",\n  ".join(
        f"case when share_with_{c}_as_of_date_ms < registration_date_ms "
        f"then share_with_{c}_as_of_date_ms - registration_date_ms end as {consent_lead_column(c)}"
        for c in CONSENTS
    )
    columns = ", ".join(CUSTOMER_COLUMNS[1:])
    return f"""select
  customer_ref, {columns},
  {consent_checks},
  case when record_rank = 1 and latest_with_serial > 1 then latest_with_serial end as {SERIAL_SHARED}
from (
  select ranked_.*, count(*) over (partition by serial_number, record_rank) as latest_with_serial
  from (
    select
      distinct_.*,
      case when email is not null then dense_rank() over (order by email) end as customer_ref,
      row_number() over (partition by email order by last_update_date_ms desc nulls last) as record_rank
    from (
      select distinct email, {columns} from {customer_view}
    ) as distinct_
  ) as ranked_
) as checked_"""


def accelerometer_sql(accelerometer_view: str, customer_view: str) -> str:
    return f"""select
  case when readings_.user_email is not null then dense_rank() over (order by readings_.user_email) end
    as user_ref,
  readings_.timestamp_ms, readings_.x, readings_.y, readings_.z,
  case when readings_.user_email is not null and customers_.email is null
    then coalesce(readings_.timestamp_ms, 0) end as {UNKNOWN_USER}
from (select distinct user_email, timestamp_ms, x, y, z from {accelerometer_view}) as readings_
left join (select distinct email from {customer_view}) as customers_
  on readings_.user_email = customers_.email"""


def step_trainer_sql(step_trainer_view: str, customer_view: str) -> str:
    return f"""select
  readings_.serial_number, readings_.sensor_reading_time_ms, readings_.distance_from_object,
  case when readings_.serial_number is not null and customers_.serial_number is null
    then coalesce(readings_.sensor_reading_time_ms, 0) end as {UNKNOWN_SERIAL}
from (
  select distinct serial_number, sensor_reading_time_ms, distance_from_object from {step_trainer_view}
) as readings_
left join (select distinct serial_number from {customer_view}) as customers_
  on readings_.serial_number = customers_.serial_number"""


def frames(table) -> list[Frame]:
    """The three frames; ``table`` maps a logical view name to the engine's (DuckDB as is, Athena prefixed)."""
    customers = table(CUSTOMER_VIEW)
    return [
        Frame(CUSTOMER_SUITE, CUSTOMER_VIEW, customer_sql(customers)),
        Frame(ACCELEROMETER_SUITE, ACCELEROMETER_VIEW, accelerometer_sql(table(ACCELEROMETER_VIEW), customers)),
        Frame(STEP_TRAINER_SUITE, STEP_TRAINER_VIEW, step_trainer_sql(table(STEP_TRAINER_VIEW), customers)),
    ]


def _not_null(spec: SuiteSpec, columns: tuple[str, ...], what: str) -> None:
    for column in columns:
        spec.add(
            "key_not_null",
            f"{column}_not_null",
            gxe.ExpectColumnValuesToNotBeNull,
            f"{column} is never null: without it a {what} cannot be attributed (the source contract requires it).",
            column=column,
        )


def customer_suite(config: GateConfig) -> SuiteSpec:
    spec = SuiteSpec(CUSTOMER_SUITE, config, ("serial_number", "registration_date_ms", "last_update_date_ms"))
    spec.add(
        "columns_present",
        "frame_columns_present",
        gxe.ExpectTableColumnsToMatchSet,
        "The customer frame has every column the checks read.",
        column_set=list(CUSTOMER_COLUMNS),
        exact_match=False,
    )
    _not_null(spec, ("customer_ref", "serial_number", "registration_date_ms", "last_update_date_ms"), "record")
    spec.add(
        "record_version_unique",
        "one_version_per_customer_and_update",
        gxe.ExpectCompoundColumnsToBeUnique,
        "A customer (e-mail) has one version of the record per last_update_date_ms; of conflicting versions "
        "customer_trusted keeps the later ingest.",
        column_list=["customer_ref", "last_update_date_ms"],
        ignore_row_if="never",
    )
    for consent in CONSENTS:
        spec.add(
            "consent_not_before_registration",
            f"{consent}_consent_not_before_registration",
            gxe.ExpectColumnValuesToBeNull,
            f"share_with_{consent}_as_of_date_ms is not before registration_date_ms (the check column holds "
            f"how many ms earlier it is).",
            column=consent_lead_column(consent),
            column_label=f"{consent} consent - registration (ms), where negative",
        )
    spec.add(
        "serial_single_customer",
        "serial_number_in_one_customers_latest_record",
        gxe.ExpectColumnValuesToBeNull,
        "A step trainer's serial number appears in one customer's latest record (the check column holds how "
        "many customers share it).",
        column=SERIAL_SHARED,
        column_label="customers sharing the serial number",
    )
    return spec


def accelerometer_suite(config: GateConfig) -> SuiteSpec:
    spec = SuiteSpec(ACCELEROMETER_SUITE, config, ("user_ref", "timestamp_ms"))
    spec.add(
        "columns_present",
        "frame_columns_present",
        gxe.ExpectTableColumnsToMatchSet,
        "The accelerometer frame has every column the checks read.",
        column_set=list(ACCELEROMETER_COLUMNS),
        exact_match=False,
    )
    _not_null(spec, ("user_ref", "timestamp_ms"), "reading")
    spec.add(
        "reading_key_unique",
        "one_reading_per_user_and_timestamp",
        gxe.ExpectCompoundColumnsToBeUnique,
        "One reading per user and timestamp (exact copies aside); of conflicting copies accelerometer_trusted "
        "keeps the latest ingest.",
        column_list=["user_ref", "timestamp_ms"],
        ignore_row_if="never",
    )
    spec.add(
        "user_is_customer",
        "reading_user_is_a_customer",
        gxe.ExpectColumnValuesToBeNull,
        "Every reading's user has a customer record (the check column holds timestamp_ms of readings whose "
        "user has none; the trusted models drop them).",
        column=UNKNOWN_USER,
        column_label="timestamp_ms of readings of unknown users",
    )
    return spec


def step_trainer_suite(config: GateConfig) -> SuiteSpec:
    spec = SuiteSpec(STEP_TRAINER_SUITE, config, ("serial_number", "sensor_reading_time_ms"))
    spec.add(
        "columns_present",
        "frame_columns_present",
        gxe.ExpectTableColumnsToMatchSet,
        "The step-trainer frame has every column the checks read.",
        column_set=list(STEP_TRAINER_COLUMNS),
        exact_match=False,
    )
    _not_null(spec, ("serial_number", "sensor_reading_time_ms"), "reading")
    spec.add(
        "reading_key_unique",
        "one_reading_per_serial_and_time",
        gxe.ExpectCompoundColumnsToBeUnique,
        "One reading per serial number and reading time (exact copies aside); of conflicting copies "
        "step_trainer_trusted keeps the latest ingest.",
        column_list=["serial_number", "sensor_reading_time_ms"],
        ignore_row_if="never",
    )
    spec.add(
        "serial_belongs_to_customer",
        "serial_number_belongs_to_a_customer",
        gxe.ExpectColumnValuesToBeNull,
        "Every step trainer's serial number is in some customer record (the check column holds the reading "
        "time of readings of unknown devices; the trusted models drop them).",
        column=UNKNOWN_SERIAL,
        column_label="sensor_reading_time_ms of readings of unknown devices",
    )
    return spec


SUITES = {
    CUSTOMER_SUITE: customer_suite,
    ACCELEROMETER_SUITE: accelerometer_suite,
    STEP_TRAINER_SUITE: step_trainer_suite,
}
