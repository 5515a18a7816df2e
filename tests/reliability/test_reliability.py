"""The reliability suite at its small size: nothing lost, nothing doubled, each scenario's check.

Each test runs one scenario of ``bench/reliability`` (``python -m bench.reliability
--size small`` runs the same, with a table) against the real webhook under
functions-framework and the real Firestore emulator. ``lost`` counts sent
messages the handler never completed, ``doubled`` messages it completed more
than once (from the handler's own durable record of every call); the scenario's
``ok`` adds its own check, spelled out in its notes.
"""

from __future__ import annotations


def check(result: dict) -> None:
    summary = f"{result['scenario']}: {result['notes']}"
    assert result["sent"] > 0, summary
    assert result["lost"] == 0, summary
    assert result["doubled"] == 0, summary
    assert result["ok"], summary


def test_load_with_duplicates_handles_every_message_exactly_once(run_scenario):
    result = run_scenario("load_duplicates")
    check(result)
    assert result["details"]["status_500"] == 0
    assert result["details"]["overlapping"] == 0


def test_store_outage_loses_and_doubles_nothing_and_5xx_only_while_down(run_scenario):
    result = run_scenario("outage")
    check(result)
    assert result["details"]["five_xx_before"] == 0
    assert result["details"]["five_xx_late"] == 0
    assert result["details"]["outage_seconds"] > 0


def test_failing_handler_ends_with_every_message_handled_exactly_once(run_scenario):
    result = run_scenario("handler_failures")
    check(result)
    assert result["details"]["handler_failures"] > 0  # failures really were injected
    assert result["status_5xx"] >= result["details"]["handler_failures"]


def test_fuzz_no_5xx_and_no_handler_call_for_an_invalid_request(run_scenario):
    result = run_scenario("fuzz")
    check(result)
    assert result["status_5xx"] == 0, result["notes"]
    assert result["details"]["invalid_handler_calls"] == 0
    assert result["details"]["field_mismatches"] == 0
    # Signed ids: every id that does not verify was refused without a store read.
    assert result["details"]["unverified_read"] == 0
    assert result["details"]["unverified_refused_unread"] > 0


def test_feeds_deliver_every_change_once_despite_dropped_and_doubled_notifications_failures_and_kills(
    run_scenario,
):
    result = run_scenario("feeds")
    check(result)
    details = result["details"]
    # The faults really happened: notifications dropped and doubled, handler failures, syncs killed.
    assert details["dropped"] > 0 and details["duplicated"] > 0, result["notes"]
    assert details["handler_failures"] > 0, result["notes"]
    assert sum(details["killed"].values()) > 0, result["notes"]
    # Each subscription's returned batches, concatenated, are its drive's change log.
    assert details["out_of_order"] == 0, result["notes"]
    # A sync never changes the webhook's answer: 5xx only for a twin sent while the other ran.
    assert details["five_xx_not_twin"] == 0, result["notes"]
    assert details["webhook_statuses"].get("500", 0) == 0, result["notes"]
