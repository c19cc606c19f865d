"""Specification of `lakehouse ingest mqtt`'s and `produce --sink mqtt`'s settings and errors: they exit 2
naming the setting and the fix, before anything connects or lands."""

from __future__ import annotations

import pytest

from lakehouse.cli import main
from lakehouse.config import ConfigError, Settings


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ([], "no MQTT broker given: pass --broker HOST:PORT (or set LAKEHOUSE_MQTT_BROKER"),
        (["--broker", "localhost:notaport"], "--broker 'localhost:notaport' is not HOST:PORT"),
        (["--broker", "localhost:1883", "--topic", "sites/#/readings"], "'#' must be a whole last level"),
        (["--broker", "localhost:1883", "--max-file-messages", "70000"], "at most 65,535 messages in flight"),
        (["--broker", "localhost:1883", "--max-file-seconds", "0"], "must be positive"),
    ],
)
def test_bad_bridge_options_exit_2_naming_the_fix_before_anything_lands(tmp_path, capsys, arguments, message):
    assert main(["--lake", str(tmp_path / "lake"), "ingest", "mqtt", *arguments]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "lake").exists()


def test_produce_into_mqtt_without_a_broker_exits_2(tmp_path, capsys):
    assert main(["--lake", str(tmp_path / "lake"), "produce", "--sink", "mqtt", "--readings", "10"]) == 2
    assert "no MQTT broker given" in capsys.readouterr().err


def test_the_mqtt_settings_come_from_the_environment_and_a_bad_protocol_is_refused(tmp_path):
    env = {"LAKEHOUSE_MQTT_BROKER": "broker.local:8883", "LAKEHOUSE_MQTT_PROTOCOL": "3.1.1"}
    settings = Settings.load(env=env, cwd=tmp_path)
    assert (settings.mqtt_broker, settings.mqtt_protocol, settings.mqtt_topic) == (
        "broker.local:8883",
        "3.1.1",
        "sites/+/devices/+/readings",
    )
    with pytest.raises(ConfigError, match="mqtt_protocol '4' is not one of: 5, 3.1.1"):
        Settings.load(env={"LAKEHOUSE_MQTT_PROTOCOL": "4"}, cwd=tmp_path)


def test_the_password_is_never_printed(tmp_path):
    settings = Settings.load(env={"LAKEHOUSE_MQTT_PASSWORD": "s3cret"}, cwd=tmp_path)
    assert settings.mqtt_password == "s3cret" and "s3cret" not in repr(settings)
