"""hints.explain: the first errors a newcomer meets name what is missing and the fix."""

from channelkit.errors import AuthError, StoreUnavailable
from channelkit.hints import explain


class DefaultCredentialsError(Exception):
    """Stands in for google.auth's class of the same name: explain() matches by name."""


def _wrapped(cause: BaseException, outer: BaseException) -> BaseException:
    try:
        try:
            raise cause
        except BaseException as exc:
            raise outer from exc
    except BaseException as final:
        return final


def test_no_credentials_names_the_login_command_and_local_alternatives():
    error = _wrapped(
        DefaultCredentialsError("Your default credentials were not found"), StoreUnavailable("x")
    )
    text = explain(error, {})
    assert text is not None
    assert "gcloud auth application-default login" in text
    assert "FIRESTORE_EMULATOR_HOST" in text and "CHANNELKIT_STORE=sqlite:///" in text
    assert "\n" not in text


def test_a_key_file_that_does_not_exist_is_named(tmp_path):
    missing = str(tmp_path / "key.json")
    error = _wrapped(DefaultCredentialsError("File was not found"), StoreUnavailable("x"))
    text = explain(error, {"GOOGLE_APPLICATION_CREDENTIALS": missing})
    assert text is not None and missing in text and "GOOGLE_APPLICATION_CREDENTIALS" in text


def test_google_api_credentials_failure_gets_the_same_hint():
    text = explain(AuthError("no Google credentials: could not find default credentials"), {})
    assert text is not None and "gcloud auth application-default login" in text


def test_no_project_names_the_variable():
    error = _wrapped(
        OSError("Project was not passed and could not be determined from the environment."),
        StoreUnavailable("Firestore failed: ProjectUnknownError: no Google Cloud project"),
    )
    text = explain(error, {})
    assert text is not None and "GOOGLE_CLOUD_PROJECT" in text and "gcloud config set project" in text


def test_an_emulator_that_does_not_answer_names_its_address_and_the_start_command():
    error = StoreUnavailable("Firestore failed: RetryError: 503 failed to connect to all addresses")
    text = explain(error, {"FIRESTORE_EMULATOR_HOST": "127.0.0.1:9"})
    assert text is not None
    assert "gcloud emulators firestore start --host-port=127.0.0.1:9" in text
    assert "FIRESTORE_EMULATOR_HOST" in text


def test_a_store_outage_without_an_emulator_is_not_blamed_on_one():
    error = StoreUnavailable("Firestore failed: RetryError: 503 failed to connect to all addresses")
    assert explain(error, {}) is None


def test_other_errors_get_no_hint():
    assert explain(ValueError("something else"), {"FIRESTORE_EMULATOR_HOST": "h:1"}) is None


def test_a_cause_cycle_ends():
    first, second = StoreUnavailable("a"), StoreUnavailable("b")
    first.__cause__, second.__cause__ = second, first
    assert explain(first, {}) is None
