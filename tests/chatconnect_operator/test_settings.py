"""The operator's own settings from CHATCONNECT_OPERATOR_* variables."""

from __future__ import annotations

from pathlib import Path

import pytest
from chatconnect_operator.settings import OperatorSettings, OperatorSettingsError, load


def test_defaults() -> None:
    settings = load({})
    assert settings == OperatorSettings()
    assert (settings.health_interval, settings.autoscale_interval, settings.failover_interval) == (
        5.0,
        15.0,
        5.0,
    )
    # a load report older than three gateway heartbeats (10 s each) is stale
    assert settings.load_max_age_ms == 30_000
    assert settings.health_ca_file is None


def test_values_from_the_environment() -> None:
    settings = load(
        {
            "CHATCONNECT_OPERATOR_HEALTH_INTERVAL": "0.5",
            "CHATCONNECT_OPERATOR_AUTOSCALE_INTERVAL": "2",
            "CHATCONNECT_OPERATOR_FAILOVER_INTERVAL": "1",
            "CHATCONNECT_OPERATOR_LOAD_HEARTBEAT_SECONDS": "4",
            "CHATCONNECT_OPERATOR_RETRY_DELAY": "3",
            "CHATCONNECT_OPERATOR_HEALTH_CA_FILE": "/etc/ca.pem",
        }
    )
    assert settings == OperatorSettings(0.5, 2.0, 1.0, 4.0, 3.0, Path("/etc/ca.pem"))
    assert settings.load_max_age_ms == 12_000


@pytest.mark.parametrize("value", ["0", "-1", "soon", "nan", "inf"])
def test_bad_values_name_the_variable(value: str) -> None:
    with pytest.raises(OperatorSettingsError, match="CHATCONNECT_OPERATOR_FAILOVER_INTERVAL"):
        load({"CHATCONNECT_OPERATOR_FAILOVER_INTERVAL": value})
