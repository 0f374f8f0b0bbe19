"""Settings from the environment: each malformed variable is refused in one line that names it, a secret's value
never quoted; and a bad `--port` or `--processes` flag likewise."""

from __future__ import annotations

import pytest

from tracker.cli import main
from tracker.settings import Settings, tcp_port, variable

from .conftest import SECRET

COUNTS = ("TRACKER_MAX_PENDING", "TRACKER_MAX_CHANGE_STREAMS", "TRACKER_REBUILD_WORKERS")
DURATIONS = ("TRACKER_KINESIS_LEASE_SECONDS", "TRACKER_KINESIS_POLL_INTERVAL", "TRACKER_CONFIG_FETCH_GIVE_UP")


def refusal(env: dict[str, str]) -> str:
    with pytest.raises(ValueError) as refused:
        Settings.from_env(env)
    return str(refused.value)


def test_no_variables_give_the_defaults_and_empty_ones_count_as_unset() -> None:
    assert Settings.from_env({}) == Settings()
    assert Settings.from_env(dict.fromkeys((*COUNTS, *DURATIONS, "TRACKER_WEBHOOK_SECRET"), "")) == Settings()


def test_numbers_and_secrets_are_read() -> None:
    second = "whsec_c2Vjb25kLXNlY3JldC1rZXk"  # unpadded, as the library allows
    settings = Settings.from_env({
        "TRACKER_MAX_PENDING": "50", "TRACKER_REBUILD_WORKERS": "3", "TRACKER_KINESIS_LEASE_SECONDS": "2.5",
        "TRACKER_KINESIS_POLL_INTERVAL": "0.2", "TRACKER_CONFIG_FETCH_GIVE_UP": "60",
        "TRACKER_WEBHOOK_SECRET": f" {SECRET}\n{second} ",
    })  # fmt: skip
    assert (settings.max_pending, settings.rebuild_workers) == (50, 3)
    assert (settings.kinesis_lease_seconds, settings.kinesis_poll_interval, settings.config_fetch_give_up) == (
        2.5, 0.2, 60.0,
    )  # fmt: skip
    assert settings.webhook_secrets == (SECRET, second)


@pytest.mark.parametrize("name", COUNTS)
@pytest.mark.parametrize("value", ["lots", "0", "-3", "1.5"])
def test_a_count_that_is_not_a_whole_number_above_zero_is_refused_by_its_name(name: str, value: str) -> None:
    assert refusal({name: value}) == f"{name}: must be a whole number, 1 or more, not {value!r}"


@pytest.mark.parametrize("name", DURATIONS)
@pytest.mark.parametrize("value", ["soon", "0", "-1", "-0.5", "nan", "inf"])
def test_a_duration_that_is_not_above_zero_is_refused_by_its_name(name: str, value: str) -> None:
    assert refusal({name: value}) == f"{name}: must be a number of seconds above 0, not {value!r}"


@pytest.mark.parametrize(
    ("secret", "why"),
    [
        ("garbage-0123456789", "no prefix: the library would decode it into some key no sender uses"),
        (SECRET.removeprefix("whsec_"), "a bare key, which the library takes, but Svix always shows the prefix"),
        ("whsec_", "no key"),
        ("whsec_MfKQ9r8G!KYqrTwjUPD8ILPZIo2LaLaSw", "not base64"),
        ("whsec_MfKQ9r8G-KYqrTwj_PD8ILPZIo2LaLaSw", "url-safe base64, which the library would skip bytes of"),
        ("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaL", "a length no base64 has"),
    ],
)
def test_a_webhook_secret_that_is_not_whsec_and_base64_is_refused_without_quoting_it(secret: str, why: str) -> None:
    message = refusal({"TRACKER_WEBHOOK_SECRET": f"{SECRET} {secret}"})

    # The whole message is fixed text: neither entry's value is in it.
    assert message == (
        "TRACKER_WEBHOOK_SECRET: entry 2 is not whsec_ followed by a base64 key (the secret as Svix shows it)"
    ), why


@pytest.mark.parametrize(("text", "port"), [("1", 1), ("8080", 8080), ("65535", 65_535)])
def test_a_port_is_one_to_65535(text: str, port: int) -> None:
    assert tcp_port(text) == port


@pytest.mark.parametrize("text", ["0", "-1", "65536", "99999", "http"])
def test_any_other_port_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match=rf"^must be a port from 1 to 65535, not '{text}'$"):
        tcp_port(text)


def test_a_new_variable_reads_through_the_same_helper_and_is_named_when_refused() -> None:
    assert variable({}, "TRACKER_SOMETHING", 7, tcp_port) == 7
    assert variable({"TRACKER_SOMETHING": "9000"}, "TRACKER_SOMETHING", 7, tcp_port) == 9000
    with pytest.raises(ValueError, match=r"^TRACKER_SOMETHING: must be a port from 1 to 65535, not '0'$"):
        variable({"TRACKER_SOMETHING": "0"}, "TRACKER_SOMETHING", 7, tcp_port)


@pytest.mark.parametrize(
    ("flags", "error"),
    [
        (["--port", "99999"], "argument --port: must be a port from 1 to 65535, not '99999'"),
        (["--port", "eighty"], "argument --port: must be a port from 1 to 65535, not 'eighty'"),
        (["--processes", "0"], "argument --processes: must be a whole number, 1 or more, not '0'"),
    ],
)
def test_a_bad_serve_flag_is_refused_before_anything_starts(
    flags: list[str], error: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["serve", *flags])

    assert exited.value.code == 2
    assert capsys.readouterr().err.splitlines() == [f"tracker serve: {error} (see tracker serve --help)"]
