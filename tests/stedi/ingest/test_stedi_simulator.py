"""Specification of the STEDI simulator: deterministic, every quirk present, and known answers that agree
with the rows it landed (recomputed here from the landed lines, by the definitions, in plain Python)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from ingestion.stedi import CONSENT_POLICIES, MODELS, StediConfig, generate, produce_stedi, read_answers
from lakehouse.cli import main
from lakehouse.errors import LakehouseError
from lakehouse.storage import LocalStorage

CONFIG = StediConfig(customers=30, seed=7)


def landed_records(settings) -> dict[str, list[dict]]:
    """Every landed line of each source, parsed, as a reader of the landing zone sees them."""
    storage = LocalStorage()
    records = {}
    for source in ("customer", "accelerometer", "step_trainer"):
        uris = storage.list(settings.lake_root.landing(source), suffix=".json")
        lines = [line for uri in uris for line in storage.read_bytes(uri).decode().split("\n") if line]
        records[source] = [json.loads(line) for line in lines]
    return records


def answers_by_definition(records: dict[str, list[dict]], policy: str) -> tuple[dict[str, int], dict[str, list[str]]]:
    """The five models, straight from the definitions in ingestion/stedi.py's docstring."""
    latest: dict[str, dict] = {}
    for c in records["customer"]:
        if c["email"] not in latest or c["lastUpdateDate"] > latest[c["email"]]["lastUpdateDate"]:
            latest[c["email"]] = c
    trusted = {e: c for e, c in latest.items() if c.get("shareWithResearchAsOfDate") is not None}

    def kept(ms: float, consent: float) -> bool:
        return policy == "any_time" or int(ms) >= int(consent)

    accel = [
        a
        for a in records["accelerometer"]
        if a["user"] in trusted
        and kept(a.get("timestamp", a.get("timeStamp")), trusted[a["user"]]["shareWithResearchAsOfDate"])
    ]
    curated = {e: c for e, c in trusted.items() if any(a["user"] == e for a in accel)}
    by_serial = {c["serialNumber"]: c for c in curated.values()}
    steps = [
        s
        for s in records["step_trainer"]
        if s["serialNumber"] in by_serial
        and kept(s["sensorReadingTime"], by_serial[s["serialNumber"]]["shareWithResearchAsOfDate"])
    ]
    pairs = [
        (s, a)
        for s in steps
        for a in accel
        if a["user"] == by_serial[s["serialNumber"]]["email"]
        and int(a.get("timestamp", a.get("timeStamp"))) == int(s["sensorReadingTime"])
    ]
    counts = {
        "customer_trusted": len(trusted),
        "accelerometer_trusted": len(accel),
        "customers_curated": len(curated),
        "step_trainer_trusted": len(steps),
        "machine_learning_curated": len(pairs),
    }
    return counts, {"customer_trusted": sorted(trusted), "customers_curated": sorted(curated)}


@pytest.fixture
def produced(settings):
    report = produce_stedi(settings, CONFIG)
    return settings, report, landed_records(settings)


def test_the_same_config_generates_the_same_bytes_and_another_seed_other_ones():
    first, again, other = generate(CONFIG), generate(CONFIG), generate(StediConfig(customers=30, seed=8))
    assert first.lines == again.lines and first.answers == again.answers
    assert first.lines["accelerometer"] != other.lines["accelerometer"]


@pytest.mark.parametrize("policy", CONSENT_POLICIES)
def test_known_answers_agree_with_the_landed_rows(produced, policy):
    settings, report, records = produced
    counts, contents = answers_by_definition(records, policy)
    answers = read_answers(settings)
    assert answers["policies"][policy] == counts
    assert answers["contents"][policy] == contents
    assert set(answers["policies"][policy]) == set(MODELS)


def test_the_answers_tell_the_consent_policies_apart(produced):
    _, report, _ = produced
    since, any_time = report.answers["policies"]["since_consent"], report.answers["policies"]["any_time"]
    assert since["customer_trusted"] == any_time["customer_trusted"] == 20
    for model in ("accelerometer_trusted", "customers_curated", "step_trainer_trusted", "machine_learning_curated"):
        assert 0 < since[model] < any_time[model], model


def test_every_landed_line_is_counted_in_the_answers(produced):
    _, report, records = produced
    for source, rows in records.items():
        assert report.answers["landing"][source]["lines"] == len(rows)
        assert report.answers["landing"][source]["files"] == len(report.landed[source])


def test_every_quirk_of_the_real_sources_is_in_the_data(produced):
    _, _, records = produced
    customers, accel, steps = records["customer"], records["accelerometer"], records["step_trainer"]
    research = [c.get("shareWithResearchAsOfDate", "absent") for c in customers]
    assert "absent" in research and None in research
    assert any(isinstance(v, float) for v in research) and any(isinstance(v, int) for v in research)
    assert any(isinstance(c.get("shareWithPublicAsOfDate"), float) for c in customers)
    assert any(len(c["birthDay"].split("-")[0]) == 3 for c in customers)
    assert any(c["birthDay"].startswith("0") for c in customers)
    # Customers sent twice, with a later lastUpdateDate, whose research consent differs between the two.
    twice = [e for e, n in Counter(c["email"] for c in customers).items() if n == 2]
    assert len(twice) >= 5
    differs = [
        e for e in twice if len({str(c.get("shareWithResearchAsOfDate")) for c in customers if c["email"] == e}) == 2
    ]
    assert differs == twice
    # Not in time order.
    times = [a.get("timestamp", a.get("timeStamp")) for a in accel]
    assert times != sorted(times)
    assert any("timeStamp" in a for a in accel) and any(isinstance(a["x"], int) for a in accel)
    assert any(isinstance(s["distanceFromObject"], float) for s in steps)
    # Step trainers of no customer, accelerometer readings of no customer.
    serials = {c["serialNumber"] for c in customers}
    assert {s["serialNumber"] for s in steps} - serials
    assert {a["user"] for a in accel} - {c["email"] for c in customers}


def test_strangers_share_timestamps_so_a_join_on_time_alone_would_pair_them(produced):
    settings, _, records = produced
    any_time, _ = answers_by_definition(records, "any_time")
    trusted_emails = set(read_answers(settings)["contents"]["any_time"]["customers_curated"])
    accel_times = Counter(
        a.get("timestamp", a.get("timeStamp")) for a in records["accelerometer"] if a["user"] in trusted_emails
    )
    shared = [t for t, n in accel_times.items() if n > 1]
    assert len(shared) >= 10  # two trusted customers read at the very same milliseconds
    serial_of = {c["serialNumber"] for c in records["customer"] if c["email"] in trusted_emails}
    time_only_pairs = sum(
        accel_times[s["sensorReadingTime"]] for s in records["step_trainer"] if s["serialNumber"] in serial_of
    )
    assert time_only_pairs > any_time["machine_learning_curated"]


def test_producing_the_same_dataset_again_lands_nothing_new(produced):
    settings, first, _ = produced
    files_before = {p: p.read_bytes() for p in Path(settings.lake_root.root, "landing").rglob("*.json")}
    again = produce_stedi(settings, CONFIG)
    assert not any(f.copied for files in again.landed.values() for f in files)
    assert {p: p.read_bytes() for p in Path(settings.lake_root.root, "landing").rglob("*.json")} == files_before


def test_another_dataset_on_a_lake_with_answers_is_refused_before_anything_lands(produced):
    settings, _, records = produced
    with pytest.raises(LakehouseError, match="_stedi_answers.json holds the answers of another STEDI dataset"):
        produce_stedi(settings, StediConfig(customers=31, seed=7))
    assert landed_records(settings) == records


def test_lakehouse_produce_dataset_stedi_prints_the_known_answers(settings, capsys):
    code = main(["--lake", settings.lake, "produce", "--dataset", "stedi", "--customers", "12", "--seed", "3"])
    out = capsys.readouterr().out
    answers = read_answers(settings)
    assert code == 0
    assert answers["config"]["customers"] == 12 and answers["config"]["seed"] == 3
    row = next(line for line in out.splitlines() if "machine_learning_curated" in line).split()
    assert row[1:] == [str(answers["policies"]["since_consent"]["machine_learning_curated"]),
                       str(answers["policies"]["any_time"]["machine_learning_curated"])]  # fmt: skip


def test_stedi_refuses_a_stream_sink(settings, capsys):
    code = main(["--lake", settings.lake, "produce", "--dataset", "stedi", "--sink", "kinesis"])
    assert code == 2
    assert "--sink kinesis is for readings" in capsys.readouterr().err
