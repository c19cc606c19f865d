"""The silver gate, one defect at a time: each defect fails its expectation (and only the ones that must
fail with it), with the severity gates.toml gives."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from expectations.runner import run_gate


def _failed(result) -> dict[str, str]:
    return {o.expectation: o.severity for o in result.failures}


def _rows_of(silver: pd.DataFrame, device_id: str) -> pd.Series:
    return silver["device_id"] == device_id


def _duplicate_a_reading(silver):
    return pd.concat([silver, silver.iloc[[5]]], ignore_index=True)


def _out_of_range(silver):
    silver.loc[_rows_of(silver, "mch-00002").idxmax(), "vibration_mm_s"] = 250.0
    return silver


def _humidity_on_a_machine(silver):
    silver.loc[_rows_of(silver, "mch-00002").idxmax(), "humidity_pct"] = 40.0
    return silver


def _fahrenheit(silver):
    environmental = silver["device_type"] == "environmental"
    silver.loc[environmental, "temperature_c"] = silver.loc[environmental, "temperature_c"] * 9 / 5 + 32
    return silver


def _unknown_device(silver):
    silver.loc[_rows_of(silver, "env-00005"), "device_id"] = "env-09005"
    return silver


def _wrong_site(silver):
    silver.loc[_rows_of(silver, "env-00001"), "site_id"] = "site-04"
    return silver


def _environmental_called_machine(silver):
    silver.loc[_rows_of(silver, "env-00001"), "device_type"] = "machine"
    return silver


def _event_date_off_by_one(silver):
    silver.loc[3, "event_date"] = date(2026, 2, 28)
    return silver


def _from_the_future(silver):
    silver.loc[7, "event_at"] = pd.Timestamp("2026-03-03 09:00")
    silver.loc[7, "event_date"] = date(2026, 3, 3)
    return silver


def _null(column):
    def spoil(silver):
        silver[column] = silver[column].astype(object)
        silver.loc[2, column] = None
        return silver

    return spoil


def _drop(column):
    return lambda silver: silver.drop(columns=[column])


SILVER_DEFECTS = [
    pytest.param(_drop("firmware"), {"model_columns_present": "error"}, id="a documented column is missing"),
    pytest.param(_null("site_id"), {"site_id_not_null": "error"}, id="a null site_id"),
    pytest.param(_null("seq"), {"seq_not_null": "error"}, id="a null seq"),
    pytest.param(_null("event_date"), {"event_date_not_null": "error"}, id="a reading without event_date"),
    pytest.param(_duplicate_a_reading, {"event_key_unique": "error"}, id="a duplicate event key"),
    pytest.param(_out_of_range, {"vibration_mm_s_in_valid_range_for_machine": "error"}, id="a value out of range"),
    pytest.param(
        _humidity_on_a_machine,
        {"humidity_pct_null_for_types_not_reporting_it": "error"},
        id="a metric in a type that does not report it",
    ),
    pytest.param(
        _fahrenheit, {"temperature_c_unit_plausible_for_environmental": "warning"}, id="temperatures in Fahrenheit"
    ),
    pytest.param(_unknown_device, {"device_in_registry": "error"}, id="a device not in the registry"),
    pytest.param(_wrong_site, {"site_id_matches_registry": "error"}, id="a device at another site"),
    pytest.param(
        _environmental_called_machine,  # machines have no humidity, so that fires with it
        {"device_type_matches_registry": "error", "humidity_pct_null_for_types_not_reporting_it": "error"},
        id="a device with another type",
    ),
    pytest.param(_event_date_off_by_one, {"event_date_is_day_of_event_at": "error"}, id="event_date not event_at's"),
    pytest.param(_from_the_future, {"event_at_not_ahead_of_ingestion": "error"}, id="a reading from the future"),
]


@pytest.mark.parametrize(("spoil", "expected"), SILVER_DEFECTS)
def test_each_silver_defect_fails_its_expectation_with_its_severity(gate_lake, spoil, expected):
    gate_lake.write_warehouse(spoil(gate_lake.silver_from(gate_lake.clean_readings())))

    result = run_gate(gate_lake.settings, "silver", run_id="defect")

    assert _failed(result) == expected, result.format_report()
    assert result.success == ("error" not in expected.values())


def _rejected(silver: pd.DataFrame, reason: str | None, metric: str | None = None) -> pd.DataFrame:
    return silver.iloc[:3].assign(rejection_reason=reason, rejected_metric=metric)


REJECTED_DEFECTS = [
    pytest.param(lambda s: _rejected(s, "cosmic_rays"), {"rejection_reason_known": "error"}, id="an unknown reason"),
    pytest.param(lambda s: _rejected(s, None), {"rejection_reason_not_null": "error"}, id="no reason"),
    pytest.param(
        lambda s: _rejected(s, "out_of_range", "colour"),
        {"rejected_metric_known": "error"},
        id="a metric that does not exist",
    ),
    pytest.param(
        lambda s: _rejected(s, "out_of_range", None),
        {"rejected_metric_set_for_metric_reasons": "warning"},
        id="out of range without the metric",
    ),
    pytest.param(
        lambda s: _rejected(s, "duplicate").drop(columns=["rejected_metric"]),
        # GX cannot evaluate the checks of a missing column: they fail with it, each with its severity
        {
            "model_columns_present": "error",
            "rejected_metric_known": "error",
            "rejected_metric_set_for_metric_reasons": "warning",
        },
        id="rejected_metric column missing",
    ),
]


@pytest.mark.parametrize(("rejected", "expected"), REJECTED_DEFECTS)
def test_each_rejected_readings_defect_fails_its_expectation(gate_lake, rejected, expected):
    silver = gate_lake.silver_from(gate_lake.clean_readings())
    gate_lake.write_warehouse(silver, rejected=rejected(silver))

    result = run_gate(gate_lake.settings, "silver", run_id="defect")

    assert _failed(result) == expected, result.format_report()
    assert {o.suite for o in result.failures} == {"silver__rejected_readings"}


def test_rejected_rows_with_documented_reasons_pass(gate_lake):
    silver = gate_lake.silver_from(gate_lake.clean_readings())
    rejected = pd.concat(
        [
            _rejected(silver, "duplicate"),
            _rejected(silver, "out_of_range", "temperature_c"),
            _rejected(silver, "unknown_device").assign(device_id="env-09001"),
        ],
        ignore_index=True,
    )
    gate_lake.write_warehouse(silver, rejected=rejected)

    result = run_gate(gate_lake.settings, "silver", run_id="r")

    assert result.success and result.failures == [], result.format_report()
    assert sum(o.element_count for o in result.results if o.expectation == "rejection_reason_known") == 9


def _two_cycles(gate_lake, late_event_at: str) -> pd.DataFrame:
    """Cycle 1 (batch 0) and, this cycle, batch 1 with one reading at ``late_event_at``."""
    first = gate_lake.silver_from(gate_lake.clean_readings(batch_id=0))
    late = first.iloc[[0]].assign(
        event_at=pd.Timestamp(late_event_at), event_date=pd.Timestamp(late_event_at).date(), seq=999, batch_id=1
    )
    return pd.concat([first, late], ignore_index=True)


def test_a_new_reading_older_than_the_lookback_is_a_warning(gate_lake):
    gate_lake.write_warehouse(_two_cycles(gate_lake, "2026-02-20 08:00"))  # > 3 days before 2026-03-01 11:30

    result = run_gate(gate_lake.settings, "silver", run_id="r", batch_ids=[1])

    assert _failed(result) == {"new_reading_within_lookback": "warning"}
    assert result.success
    assert "lookback: rows of batches [1] must have event_at >= 2026-02-26 11:30:00 (3 day lookback)" in result.notes


def test_a_late_reading_within_the_lookback_passes(gate_lake):
    gate_lake.write_warehouse(_two_cycles(gate_lake, "2026-02-27 08:00"))

    result = run_gate(gate_lake.settings, "silver", run_id="r", batch_ids=[1])

    assert result.failures == []


def test_an_old_reading_that_silver_already_held_is_not_new(gate_lake):
    silver = _two_cycles(gate_lake, "2026-02-20 08:00")
    gate_lake.write_warehouse(silver)
    run_gate(gate_lake.settings, "silver", run_id="cycle-1")  # records batch 1 as seen

    result = run_gate(gate_lake.settings, "silver", run_id="cycle-2")

    assert result.failures == []
    assert "lookback: rows of batches after 1 (the newest the previous silver gate saw)" in result.notes[0]


def test_without_batch_ids_the_rows_after_the_previous_gate_are_new(gate_lake):
    first = gate_lake.silver_from(gate_lake.clean_readings(batch_id=0))
    gate_lake.write_warehouse(first)
    run_gate(gate_lake.settings, "silver", run_id="cycle-1")
    gate_lake.write_warehouse(_two_cycles(gate_lake, "2026-02-20 08:00"))

    result = run_gate(gate_lake.settings, "silver", run_id="cycle-2")

    assert _failed(result) == {"new_reading_within_lookback": "warning"}
    late = next(o for o in result.failures if o.expectation == "new_reading_within_lookback")
    assert late.unexpected_count == 1 and late.sample_rows[0]["seq"] == 999
