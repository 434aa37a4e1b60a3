"""The exception tree itself: shape, stable codes, and surviving pickle/copy."""

import copy
import pickle

import pytest

from mpesa_bridge.daraja import (
    DarajaAuthError,
    DarajaConnectError,
    DarajaConnectTimeout,
    DarajaError,
    DarajaReadTimeout,
    DarajaRejected,
    DarajaResponseError,
    DarajaServerError,
    DarajaStillProcessing,
    DarajaSubscriberLocked,
    DarajaThrottled,
    DarajaTimeout,
    DarajaTransportError,
    DarajaValidationError,
)

TREE: dict[type[DarajaError], tuple[type[Exception], str]] = {
    DarajaError: (Exception, "daraja_error"),
    DarajaValidationError: (DarajaError, "daraja_validation_error"),
    DarajaTransportError: (DarajaError, "daraja_transport_error"),
    DarajaConnectError: (DarajaTransportError, "daraja_connect_error"),
    DarajaTimeout: (DarajaTransportError, "daraja_timeout"),
    DarajaConnectTimeout: (DarajaTimeout, "daraja_connect_timeout"),
    DarajaReadTimeout: (DarajaTimeout, "daraja_read_timeout"),
    DarajaResponseError: (DarajaError, "daraja_response_error"),
    DarajaAuthError: (DarajaResponseError, "daraja_auth_error"),
    DarajaRejected: (DarajaResponseError, "daraja_rejected"),
    DarajaSubscriberLocked: (DarajaRejected, "daraja_subscriber_locked"),
    DarajaStillProcessing: (DarajaResponseError, "daraja_still_processing"),
    DarajaThrottled: (DarajaResponseError, "daraja_throttled"),
    DarajaServerError: (DarajaResponseError, "daraja_server_error"),
}


@pytest.mark.parametrize(("cls", "parent_and_code"), TREE.items(), ids=[c.__name__ for c in TREE])
def test_tree_shape_and_codes(cls: type[DarajaError], parent_and_code: tuple[type[Exception], str]) -> None:
    parent, code = parent_and_code
    assert cls.__bases__ == (parent,)
    assert cls.code == code
    assert cls.__doc__


def test_codes_are_unique() -> None:
    assert len({cls.code for cls in TREE}) == len(TREE)


def test_only_a_read_timeout_defaults_to_an_unknown_outcome() -> None:
    assert DarajaReadTimeout("x").outcome_unknown is True
    assert DarajaConnectError("x").outcome_unknown is False
    assert DarajaServerError("x", http_status=500).outcome_unknown is False
    assert DarajaServerError("x", http_status=500, outcome_unknown=True).outcome_unknown is True
    assert DarajaReadTimeout("x", outcome_unknown=False).outcome_unknown is False


@pytest.mark.parametrize(
    "error",
    [
        DarajaValidationError("amount", "must be between 1 and 250000"),
        DarajaReadTimeout("stk_push: ReadTimeout", outcome_unknown=True),
        DarajaSubscriberLocked(
            "stk_push: HTTP 500 500.001.1001 Unable to lock subscriber",
            http_status=500,
            error_code="500.001.1001",
            error_message="Unable to lock subscriber",
            request_id="r-1",
            body_prefix="{}",
        ),
    ],
    ids=["validation", "read-timeout", "response"],
)
def test_errors_survive_pickle_and_copy(error: DarajaError) -> None:
    for clone in (pickle.loads(pickle.dumps(error)), copy.copy(error)):
        assert type(clone) is type(error)
        assert str(clone) == str(error)
        assert vars(clone) == vars(error)
