"""The STEDI curation on the known-answer scenario of conftest.py, built with the real dbt on DuckDB under
both consent policies: every model's rows, the strangers rule, the policy recorded, and no personal data
past the trusted zone."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import duckdb
import pytest

from lakehouse.config import DBT_ARTIFACTS_DIR, DBT_PROJECT_DIR, ConfigError, Settings
from orchestration.transform import pii_salt_file, transform

T0 = 1_655_000_000_000  # the scenario's T0 (conftest.py); minutes() turns its epoch ms back into minutes


def email(name: str) -> str:
    return f"{name}@example.com"


def minutes(ms: int) -> float:
    return (ms - T0) / 60_000


# --- customer_trusted ------------------------------------------------------------------------------------


@pytest.mark.parametrize("policy", ["since_consent", "any_time"])
def test_customer_trusted_holds_the_latest_record_of_each_customer_who_consented(stedi, policy, request):
    built = request.getfixturevalue(policy)
    rows = built.rows(
        "customer_trusted", "email, serial_number, last_update_date_ms, share_with_research_as_of_date_ms"
    )
    # carol never consented, dave withdrew in his latest record, ghost is no customer; alice's latest
    # record (with consent) wins over her older one (without).
    assert rows == [
        (email("alice"), "SN-A", stedi.at(10), stedi.at(10)),
        (email("bob"), "SN-B", stedi.at(0), stedi.at(0)),
        (email("erin"), "SN-E", stedi.at(30), stedi.at(30)),
        (email("frank"), "SN-F", stedi.at(0), stedi.at(0)),
        (email("grace"), "SN-G", stedi.at(0), stedi.at(0)),
        (email("heidi"), "SN-G", stedi.at(0), stedi.at(0)),
    ]


# --- accelerometer_trusted -------------------------------------------------------------------------------

ACCELEROMETER_SINCE_CONSENT = [
    ("alice", 10, 1.10),  # exactly at her consent: kept
    ("alice", 15, 1.15),  # landed twice, kept once
    ("alice", 25, 1.25),
    ("bob", 5, 2.05),
    ("bob", 15, 2.15),
    ("bob", 25, 2.25),
    ("grace", 15, 7.15),
    ("heidi", 25, 8.25),
]
ACCELEROMETER_ANY_TIME = sorted(
    [*ACCELEROMETER_SINCE_CONSENT, ("alice", 5, 1.05), ("erin", 5, 5.05), ("erin", 15, 5.15)]
)


@pytest.mark.parametrize(
    ("policy", "expected"),
    [("since_consent", ACCELEROMETER_SINCE_CONSENT), ("any_time", ACCELEROMETER_ANY_TIME)],
)
def test_accelerometer_trusted_keeps_one_copy_of_consenting_customers_readings(policy, expected, request):
    built = request.getfixturevalue(policy)
    rows = built.rows("accelerometer_trusted", "user_email, timestamp_ms, x, y, z")
    assert [(e.split("@")[0], minutes(t), x) for e, t, x, _, _ in rows] == expected
    assert all(y == -x and z == 9.8 for _, _, x, y, z in rows)


# --- customers_curated -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        # erin's readings all predate her consent; frank has none
        ("since_consent", ["alice", "bob", "grace", "heidi"]),
        ("any_time", ["alice", "bob", "erin", "grace", "heidi"]),
    ],
)
def test_customers_curated_are_trusted_customers_with_accelerometer_readings(stedi, policy, expected, request):
    built = request.getfixturevalue(policy)
    rows = built.rows("customers_curated", "customer_key, share_with_research_as_of_date_ms, registration_date_ms")
    consent = {"alice": stedi.at(10), "erin": stedi.at(30)}
    assert rows == sorted((stedi.key(email(n)), consent.get(n, stedi.at(0)), stedi.at(0)) for n in expected)


# --- step_trainer_trusted --------------------------------------------------------------------------------

STEP_SINCE_CONSENT = [
    ("SN-A", 10, 110.0),  # alice's device from her consent on
    ("SN-A", 15, 115.0),
    ("SN-A", 25, 125.0),
    ("SN-A", 35, 135.0),  # no accelerometer reading at 35, still her device's reading
    ("SN-B", 5, 205.0),
    ("SN-B", 15, 215.0),
    ("SN-B", 25, 225.0),  # landed twice, kept once
    ("SN-G", 15, 715.0),  # grace's and heidi's device
    ("SN-G", 25, 725.0),
]
STEP_ANY_TIME = sorted(
    [*STEP_SINCE_CONSENT, ("SN-A", 5, 105.0), ("SN-E", 5, 505.0), ("SN-E", 15, 515.0), ("SN-E", 35, 535.0)]
)


@pytest.mark.parametrize(("policy", "expected"), [("since_consent", STEP_SINCE_CONSENT), ("any_time", STEP_ANY_TIME)])
def test_step_trainer_trusted_keeps_readings_of_curated_customers_devices(policy, expected, request):
    built = request.getfixturevalue(policy)
    rows = built.rows("step_trainer_trusted", "serial_number, sensor_reading_time_ms, distance_from_object")
    # SN-C (carol), SN-D (dave), SN-F (frank: no accelerometer data) and SN-X (nobody's) never appear
    assert [(s, minutes(t), d) for s, t, d in rows] == expected


# --- nothing lost: the rejected tables --------------------------------------------------------------------

REJECTED_SINCE_CONSENT = {
    "customer": [
        ("alice", 1, "superseded_by_later_record"),  # her older record, without consent
        ("carol", 0, "no_research_consent"),
        ("dave", 1, "superseded_by_later_record"),
        ("dave", 20, "no_research_consent"),  # his latest record withdraws the consent
    ],
    "accelerometer": [
        ("alice", 5, "before_consent"),
        ("alice", 15, "duplicate_copy"),  # the earlier of the two identical copies
        ("carol", 5, "customer_not_trusted"),
        ("dave", 5, "customer_not_trusted"),
        ("dave", 15, "customer_not_trusted"),
        ("erin", 5, "before_consent"),
        ("erin", 15, "before_consent"),
        ("ghost", 5, "customer_not_trusted"),
    ],
    "step_trainer": [
        ("SN-A", 5, "before_consent"),
        ("SN-B", 25, "duplicate_copy"),
        ("SN-C", 5, "device_not_curated"),
        ("SN-D", 15, "device_not_curated"),
        ("SN-E", 5, "device_not_curated"),  # erin has no trusted accelerometer reading: not curated
        ("SN-E", 15, "device_not_curated"),
        ("SN-E", 35, "device_not_curated"),
        ("SN-F", 5, "device_not_curated"),
        ("SN-X", 5, "device_not_curated"),
    ],
}
REJECTED_KEYS = {
    "customer": "email, last_update_date_ms",
    "accelerometer": "user_email, timestamp_ms",
    "step_trainer": "serial_number, sensor_reading_time_ms",
}


def test_every_bronze_row_not_trusted_is_rejected_with_its_reason(since_consent):
    for source, expected in REJECTED_SINCE_CONSENT.items():
        rows = since_consent.rows(f"{source}_rejected", f"{REJECTED_KEYS[source]}, rejection_reason")
        assert [(k.split("@")[0], minutes(t), reason) for k, t, reason in rows] == expected, source


@pytest.mark.parametrize("policy", ["since_consent", "any_time"])
def test_bronze_rows_are_trusted_rows_plus_rejected_rows_for_every_source(policy, request):
    built = request.getfixturevalue(policy)
    for source in ("customer", "accelerometer", "step_trainer"):
        [(bronze,)] = built.rows(f"stg_bronze__{source}", "count(*)")
        [(trusted,)] = built.rows(f"{source}_trusted", "count(*)")
        [(rejected,)] = built.rows(f"{source}_rejected", "count(*)")
        assert bronze == trusted + rejected, source
        assert rejected > 0, source  # the scenario has rows of every source that are not kept


# --- machine_learning_curated ----------------------------------------------------------------------------

ML_SINCE_CONSENT = [
    ("alice", 10, 110.0, 1.10),
    ("alice", 15, 115.0, 1.15),
    ("alice", 25, 125.0, 1.25),
    ("bob", 5, 205.0, 2.05),
    ("bob", 15, 215.0, 2.15),
    ("bob", 25, 225.0, 2.25),
    ("grace", 15, 715.0, 7.15),
    ("heidi", 25, 725.0, 8.25),
]
ML_ANY_TIME = sorted(
    [*ML_SINCE_CONSENT, ("alice", 5, 105.0, 1.05), ("erin", 5, 505.0, 5.05), ("erin", 15, 515.0, 5.15)]
)


@pytest.mark.parametrize(("policy", "expected"), [("since_consent", ML_SINCE_CONSENT), ("any_time", ML_ANY_TIME)])
def test_machine_learning_curated_pairs_each_step_reading_with_its_customers_accelerometer_reading(
    stedi, policy, expected, request
):
    built = request.getfixturevalue(policy)
    rows = built.rows(
        "machine_learning_curated", "customer_key, sensor_reading_time_ms, timestamp_ms, distance_from_object, x"
    )
    assert rows == sorted((stedi.key(email(n)), stedi.at(m), stedi.at(m), d, x) for n, m, d, x in expected)


def test_strangers_never_meet_in_machine_learning_curated(stedi, since_consent):
    # alice, bob and grace all have accelerometer and step-trainer readings at minute 15 (and alice, bob,
    # heidi at 25): a join on time alone would pair each step reading with three customers' readings.
    shared = since_consent.query(
        "select timestamp_ms, count(distinct user_email) from trusted.accelerometer_trusted "
        "group by timestamp_ms having count(distinct user_email) > 1 order by timestamp_ms"
    )
    assert shared == [(stedi.at(15), 3), (stedi.at(25), 3)]
    owner_of_x = {1: "alice", 2: "bob", 7: "grace", 8: "heidi"}  # x = 1.xx is alice's phone, ...
    owners_of_distance = {1: {"alice"}, 2: {"bob"}, 7: {"grace", "heidi"}}  # 1xx: alice's device (SN-A), ...
    key_of = {stedi.key(email(n)): n for n in owner_of_x.values()}
    rows = since_consent.query(
        "select customer_key, distance_from_object, x from curated.machine_learning_curated "
        f"where sensor_reading_time_ms in ({stedi.at(15)}, {stedi.at(25)})"
    )
    assert len(rows) == 6  # one pair per customer and time, not 3 x 3 per time
    for key, distance, x in rows:
        assert key_of[key] == owner_of_x[int(x)]
        assert key_of[key] in owners_of_distance[int(distance // 100)]


def test_a_device_shared_by_two_customers_pairs_each_with_their_own_readings(stedi, since_consent):
    rows = since_consent.rows("machine_learning_curated", "customer_key, sensor_reading_time_ms, x")
    shared_device = [(k, t, x) for k, t, x in rows if k in (stedi.key(email("grace")), stedi.key(email("heidi")))]
    assert shared_device == sorted(
        [(stedi.key(email("grace")), stedi.at(15), 7.15), (stedi.key(email("heidi")), stedi.at(25), 8.25)]
    )


# --- the policy ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("policy", ["since_consent", "any_time"])
def test_every_table_records_the_policy_that_built_it(policy, request):
    built = request.getfixturevalue(policy)
    for model in ("customer_trusted", "accelerometer_trusted", "step_trainer_trusted", "customers_curated"):
        assert built.rows(model, "distinct consent_policy") == [(policy,)], model
    assert built.rows("machine_learning_curated", "distinct consent_policy") == [(policy,)]


def test_an_unknown_consent_policy_is_refused_by_the_settings_and_by_dbt(since_consent):
    with pytest.raises(ConfigError, match="consent_policy 'sometimes' is not one of: since_consent, any_time"):
        Settings.load(env={"LAKEHOUSE_CONSENT_POLICY": "sometimes"})
    result = transform(since_consent.settings, vars={"consent_policy": "sometimes"}, select="customer_trusted")
    assert not result.success
    assert any(
        "var consent_policy = 'sometimes' is not one of: since_consent, any_time" in f for f in result.failures
    ), result.failures


# --- personal data ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["customers_curated", "machine_learning_curated"])
def test_curated_tables_identify_customers_by_a_salted_key_only(stedi, since_consent, model):
    columns = since_consent.columns(model)
    assert "customer_key" in columns
    for personal in ("email", "user_email", "customer_name", "phone", "birth_day", "serial_number"):
        assert personal not in columns
    keys = [k for (k,) in since_consent.rows(model, "distinct customer_key")]
    assert keys and all(re.fullmatch(r"[0-9a-f]{64}", k) for k in keys)
    # salted: the key is not the plain hash of the e-mail
    assert stedi.key(email("bob"), salt="") not in keys


def test_the_salt_never_reaches_dbts_compiled_sql_or_artifacts(stedi, since_consent):
    target = DBT_ARTIFACTS_DIR / "target"
    written = [
        target / "compiled" / "lakehouse" / "models" / "curated" / "customers_curated.sql",
        target / "run" / "lakehouse" / "models" / "curated" / "customers_curated.sql",
        target / "manifest.json",
        target / "run_results.json",
    ]
    for path in written:
        assert stedi.salt not in path.read_text(), path
    assert "read_text(" in written[0].read_text()  # the SQL reads the salt when it runs


def test_the_no_pii_columns_test_runs_and_passes_on_every_curated_model(since_consent):
    curated = sorted(p.stem for p in (DBT_PROJECT_DIR / "models" / "curated").glob("*.sql"))
    assert curated == ["customers_curated", "machine_learning_curated"]
    ran = {t.name: t.status for t in since_consent.result.tests if t.name.startswith("no_pii_columns_")}
    assert ran == {f"no_pii_columns_{model}_": "pass" for model in curated}


# --- the salt --------------------------------------------------------------------------------------------


def test_a_local_lake_without_a_configured_salt_gets_a_random_one_once(tmp_path):
    settings = Settings.load(env={}, lake=str(tmp_path))
    with pii_salt_file(settings) as first:
        salt = Path(first).read_text().strip()
    with pii_salt_file(settings) as second:
        assert second == first and Path(second).read_text().strip() == salt
    assert first == str(tmp_path / "_secrets" / "pii_salt")
    assert re.fullmatch(r"[0-9a-f]{64}", salt)
    assert stat.S_IMODE((tmp_path / "_secrets" / "pii_salt").stat().st_mode) == 0o600


def test_a_configured_salt_reaches_dbt_through_a_private_file_removed_afterwards(stedi, tmp_path):
    settings = Settings.load(env={"LAKEHOUSE_PII_SALT": stedi.salt}, lake=str(tmp_path))
    assert stedi.salt not in repr(settings)
    with pii_salt_file(settings) as path:
        assert Path(path).read_text() == stedi.salt
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert not os.path.exists(path)
    assert not (tmp_path / "_secrets").exists()


def test_an_s3_lake_without_a_salt_has_no_salt_file():
    settings = Settings.load(env={}, lake="s3://bucket/lake", dbt_target="athena")
    with pii_salt_file(settings) as path:
        assert path is None


def test_a_too_short_salt_stops_the_curated_build_with_how_to_set_it(stedi, since_consent):
    short = stedi.build(since_consent.settings.lake_root.local_path(), "customers_curated", pii_salt="short")
    assert not short.result.success
    failures = " ".join(short.result.failures)
    assert "has 5 characters; use at least 16" in failures
    assert "LAKEHOUSE_PII_SALT" in failures
    assert "short" not in failures  # the salt itself is never shown


# --- a lake without STEDI data ---------------------------------------------------------------------------


def test_a_lake_without_stedi_data_builds_empty_stedi_tables(tmp_path):
    settings = Settings.load(env={}, cwd=tmp_path, lake=str(tmp_path))  # no salt configured: the lake gets one

    result = transform(settings, select="+tag:stedi")

    assert result.success, result.failures
    with duckdb.connect(str(settings.lake_root.warehouse), read_only=True) as con:
        counts = {
            table: con.execute(f"select count(*) from {schema}.{table}").fetchone()[0]
            for schema, table in con.execute(
                "select table_schema, table_name from information_schema.tables "
                "where table_schema in ('trusted', 'curated') order by table_name"
            ).fetchall()
        }
    assert counts == {
        f"{source}_{part}": 0
        for source in ("accelerometer", "customer", "step_trainer")
        for part in ("classified", "rejected", "trusted")
    } | {"customers_curated": 0, "machine_learning_curated": 0}
    assert (tmp_path / "_secrets" / "pii_salt").exists()


def test_the_consent_policy_setting_reaches_dbt_as_a_var():
    import json

    from orchestration.transform import dbt_args

    args = dbt_args(Settings.load(env={"LAKEHOUSE_CONSENT_POLICY": "any_time"}), "gold")
    assert json.loads(args[args.index("--vars") + 1])["consent_policy"] == "any_time"
    assert Settings.load(env={}).consent_policy == "since_consent"


def test_the_lake_and_the_salt_file_reach_dbt_as_vars_not_through_the_environment(stedi, tmp_path, monkeypatch):
    import json

    monkeypatch.delenv("LAKEHOUSE_LAKE", raising=False)
    monkeypatch.delenv("LAKEHOUSE_PII_SALT_FILE", raising=False)
    settings = Settings.load(env={"LAKEHOUSE_PII_SALT": stedi.salt}, cwd=tmp_path, lake=str(tmp_path))

    result = transform(settings, select="+tag:stedi")  # reads the lake, hashes with the salt

    assert result.success, result.failures
    run_results = json.loads((DBT_ARTIFACTS_DIR / "target" / "run_results.json").read_text())
    passed = run_results["args"]["vars"]
    passed = json.loads(passed) if isinstance(passed, str) else passed
    assert passed["lake_root"] == str(tmp_path)
    assert passed["pii_salt_file"].endswith("pii_salt") and stedi.salt not in json.dumps(passed)
    assert "LAKEHOUSE_LAKE" not in os.environ and "LAKEHOUSE_PII_SALT_FILE" not in os.environ
    assert (tmp_path / "warehouse.duckdb").exists()  # the lake of the var, not ../lake
