"""Settings: defaults, TOML file, environment, errors that name the culprit; page tokens."""

from __future__ import annotations

import base64
import dataclasses
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatconnect.gateway.config import GatewayConfig
from chatconnect.router.config import RouterConfig
from chatconnect.router.domain.errors import PageTokenInvalid
from chatconnect.router.domain.inbox import decode_page_token, encode_page_token
from chatconnect.runtime.config import ConfigError, env_name, load_section, setting
from chatconnect.runtime.server import grpc_options
from chatconnect.runtime.settings import LoggingConfig, ServerConfig, advice, load_settings

VAR = "CHATCONNECT_ROUTER__MAX_ENVELOPE_BYTES"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "chatconnect.toml"
    path.write_text(text)
    return path


def test_defaults() -> None:
    settings = load_settings(None, env={})
    assert settings.router == RouterConfig()
    assert settings.gateway == GatewayConfig()
    assert settings.server == ServerConfig()
    assert settings.router.max_envelope_bytes == 256 * 1024
    assert settings.server.listen == "127.0.0.1:7600"
    assert settings.server.sqlite_synchronous == "FULL"
    assert settings.logging.level == "info"
    assert settings.auth.signing_key_file is None
    assert settings.signing_key_path() == Path("data") / "secrets" / "token-signing-key.pem"


def test_environment_is_ignored_unless_prefixed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(VAR, "4096")
    assert load_settings(None).router.max_envelope_bytes == 4096  # os.environ by default
    assert load_settings(None, env={}).router.max_envelope_bytes == 256 * 1024
    assert load_settings(None, env={"ROUTER__MAX_ENVELOPE_BYTES": "7"}).router == RouterConfig()


def test_file_values(tmp_path: Path) -> None:
    path = write(tmp_path, """
[server]
listen = "0.0.0.0:9000"
data_dir = "~/chat-data"
sqlite_synchronous = "NORMAL"

[router]
max_envelope_bytes = 131_072
sends_per_second = 10
retention_seconds = 3600

[gateway]
shed_retry_seconds = 0.5
""")
    settings = load_settings(path, env={})
    assert settings.server.listen == "0.0.0.0:9000"
    assert settings.server.data_dir == Path("~/chat-data").expanduser()
    assert settings.server.sqlite_synchronous == "NORMAL"
    assert settings.router.max_envelope_bytes == 131_072
    assert settings.router.sends_per_second == 10.0
    assert isinstance(settings.router.sends_per_second, float)
    assert settings.router.retention_seconds == 3600
    assert settings.gateway.shed_retry_seconds == 0.5
    # Untouched settings keep their defaults.
    assert settings.router.send_burst == RouterConfig().send_burst
    assert settings.logging == LoggingConfig()


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[router]\nmax_envelope_bytes = 1000\nsend_burst = 7\n")
    settings = load_settings(path, env={VAR: "2_048"})
    assert settings.router.max_envelope_bytes == 2048
    assert settings.router.send_burst == 7


def test_precedence_profile_file_overrides_environment(tmp_path: Path) -> None:
    path = write(tmp_path, "[router]\nsync_page_size = 20\nmax_ids_per_ack = 30\n")
    settings = load_settings(
        path,
        env={"CHATCONNECT_ROUTER__MAX_RECEIPT_MESSAGES": "40"},
        overrides={"router": {"max_ids_per_ack": 31, "max_receipt_messages": 41}},
        profile={"router": {"sync_page_size": 10, "max_sync_page_size": 11}},
    )
    assert settings.router.max_sync_page_size == 11  # profile
    assert settings.router.sync_page_size == 20  # file beats profile
    assert settings.router.max_ids_per_ack == 31  # overrides beat file
    assert settings.router.max_receipt_messages == 40  # environment beats everything


def test_a_bad_integer_in_the_environment_names_the_key_and_the_variable(tmp_path: Path) -> None:
    path = write(tmp_path, "[router]\nmax_envelope_bytes = 1000\n")
    with pytest.raises(ConfigError) as error:
        load_settings(path, env={VAR: "12kb"})
    message = str(error.value)
    assert "router.max_envelope_bytes" in message
    assert VAR in message
    assert "12kb" in message


@pytest.mark.parametrize("value", ["1.5", "true", '"lots"', "[1]"])
def test_a_bad_integer_in_the_file_names_the_key(tmp_path: Path, value: str) -> None:
    path = write(tmp_path, f"[router]\nmax_envelope_bytes = {value}\n")
    with pytest.raises(ConfigError, match=r"router\.max_envelope_bytes.*config file"):
        load_settings(path, env={})


def test_a_bad_number_names_the_key() -> None:
    with pytest.raises(ConfigError, match=r"gateway\.connects_per_second.*CHATCONNECT_GATEWAY__"):
        load_settings(None, env={"CHATCONNECT_GATEWAY__CONNECTS_PER_SECOND": "fast"})


def test_an_unknown_key_is_an_error_naming_it(tmp_path: Path) -> None:
    path = write(tmp_path, "[router]\nmax_envelope_bytes = 1000\nmax_envelop_bytes = 5\n")
    with pytest.raises(ConfigError) as error:
        load_settings(path, env={})
    assert "router.max_envelop_bytes" in str(error.value)
    assert "max_envelope_bytes" in str(error.value)  # the known ones are listed


def test_an_unknown_section_is_an_error_naming_it(tmp_path: Path) -> None:
    path = write(tmp_path, "[routre]\nmax_envelope_bytes = 1000\n")
    with pytest.raises(ConfigError, match=r"\[routre\]"):
        load_settings(path, env={})


def test_an_unknown_override_key_is_an_error() -> None:
    with pytest.raises(ConfigError, match=r"gateway\.windoww"):
        load_settings(None, env={}, overrides={"gateway": {"windoww": 3}})


@pytest.mark.parametrize("raw", ["0", "-5"])
def test_a_check_failure_names_the_key_and_the_rule(raw: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_settings(None, env={VAR: raw})
    message = str(error.value)
    assert "router.max_envelope_bytes" in message
    assert VAR in message
    assert "must be greater than 0" in message


def test_a_check_failure_from_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[gateway]\nshed_retry_seconds = 0\n")
    with pytest.raises(ConfigError, match=r"gateway\.shed_retry_seconds.*greater than 0"):
        load_settings(path, env={})


def test_a_word_outside_its_choices_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"logging\.level.*one of debug, info"):
        load_settings(None, env={"CHATCONNECT_LOGGING__LEVEL": "loud"})


def test_a_missing_or_malformed_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "missing.toml", env={})
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(write(tmp_path, "[router\n"), env={})


def test_an_optional_path_is_none_when_empty() -> None:
    settings = load_settings(None, env={"CHATCONNECT_AUTH__SIGNING_KEY_FILE": ""})
    assert settings.auth.signing_key_file is None
    settings = load_settings(None, env={"CHATCONNECT_AUTH__SIGNING_KEY_FILE": "/k.pem"})
    assert settings.auth.signing_key_file == Path("/k.pem")
    assert settings.signing_key_path() == Path("/k.pem")


# --- bool parsing (no shipped section has a bool yet, so a local one) -----------------------


@dataclasses.dataclass(frozen=True)
class Flags:
    enabled: bool = setting(False, "a switch")
    count: int = setting(1, "a number")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("1", True), ("true", True), ("TRUE", True), ("yes", True), (" On ", True),
     ("0", False), ("false", False), ("False", False), ("no", False), ("off", False)],
)
def test_bool_parsing_from_the_environment(raw: str, expected: bool) -> None:
    flags = load_section(Flags, "flags", {}, {env_name("flags", "enabled"): raw})
    assert flags.enabled is expected


@pytest.mark.parametrize("value", [True, False])
def test_bool_from_the_file(value: bool) -> None:
    assert load_section(Flags, "flags", {"enabled": value}, {}).enabled is value


@pytest.mark.parametrize("raw", ["maybe", "2", "", "y"])
def test_a_bad_bool_names_the_key_and_the_variable(raw: str) -> None:
    variable = env_name("flags", "enabled")
    assert variable == "CHATCONNECT_FLAGS__ENABLED"
    with pytest.raises(ConfigError) as error:
        load_section(Flags, "flags", {}, {variable: raw})
    assert "flags.enabled" in str(error.value)
    assert variable in str(error.value)


def test_a_bool_is_not_an_integer() -> None:
    with pytest.raises(ConfigError, match=r"flags\.count"):
        load_section(Flags, "flags", {"count": True}, {})


# --- page tokens ---------------------------------------------------------------------------


@pytest.mark.parametrize("after", [0, 1, 42, 10**6, 2**63 - 1])
def test_page_token_round_trip(after: int) -> None:
    token = encode_page_token(after)
    assert isinstance(token, str)
    assert token.isascii()
    assert decode_page_token(token) == after


@given(st.integers(min_value=0, max_value=2**63 - 1))
def test_page_token_round_trip_property(after: int) -> None:
    assert decode_page_token(encode_page_token(after)) == after


def test_an_empty_page_token_means_the_start() -> None:
    assert decode_page_token("") == 0


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    "token",
    [
        "garbage!",
        "abc",
        "=",
        "djE6",  # "v1:" with no number
        _b64("v2:5"),
        _b64("v1:-1"),
        _b64("v1:five"),
        _b64("5"),
        base64.urlsafe_b64encode(b"v1:\xff\xfe").decode(),
        encode_page_token(7)[:-3],
        encode_page_token(2**63),  # beyond a signed 64-bit sequence
    ],
)
def test_garbage_page_tokens_raise_page_token_invalid(token: str) -> None:
    with pytest.raises(PageTokenInvalid):
        decode_page_token(token)


def test_the_pending_calls_limit_reaches_the_grpc_core_above_the_handshake_cap() -> None:
    settings = load_settings(None, env={"CHATCONNECT_SERVER__MAX_PENDING_CALLS": "12345"})
    options = dict(grpc_options(settings))
    assert options["grpc.server.max_pending_requests"] == 12345
    assert options["grpc.server.max_pending_requests_hard_limit"] == 12345
    defaults = load_settings(None, env={})
    # By default the core queues far more than the gateway lets into its handshake, so a
    # storm is shed by the gateway (with a retry hint), not cancelled by the core.
    assert defaults.server.max_pending_calls > 10 * defaults.gateway.max_handshakes


def test_several_processes_need_the_redis_bus_to_join_them() -> None:
    with pytest.raises(ConfigError, match=r"server.processes=4 needs server.bus=redis"):
        load_settings(None, env={"CHATCONNECT_SERVER__PROCESSES": "4"})
    settings = load_settings(
        None, env={"CHATCONNECT_SERVER__PROCESSES": "4", "CHATCONNECT_SERVER__BUS": "redis"}
    )
    assert settings.server.processes == 4


def test_several_processes_on_the_embedded_store_come_with_advice() -> None:
    several = {"CHATCONNECT_SERVER__PROCESSES": "2", "CHATCONNECT_SERVER__BUS": "redis"}
    (note,) = advice(load_settings(None, env=several))
    assert "share one SQLite file" in note and "server.store=scylla" in note
    on_scylla = {**several, "CHATCONNECT_SERVER__STORE": "scylla"}
    assert advice(load_settings(None, env=on_scylla)) == []
    assert advice(load_settings(None, env={})) == []


def test_only_several_processes_share_their_port() -> None:
    # One process must fail to start on a port that another server holds, not share it.
    single = dict(grpc_options(load_settings(None, env={})))
    assert single["grpc.so_reuseport"] == 0
    several = load_settings(
        None, env={"CHATCONNECT_SERVER__PROCESSES": "2", "CHATCONNECT_SERVER__BUS": "redis"}
    )
    assert dict(grpc_options(several))["grpc.so_reuseport"] == 1
