"""The recording HTTP target the notification tests rely on."""

from __future__ import annotations

import httpx
import pytest

from tests.alerts.recorder import Recorder, Reply, refused_url


def test_records_json_and_answers_scripted_statuses() -> None:
    with Recorder() as target:
        target.script(500, Reply(429, {"error": "slow down"}, {"Retry-After": "3"}))
        with httpx.Client() as client:
            first = client.post(f"{target.url}/hook?x=1", json={"a": 1}, headers={"X-Test": "yes"})
            second = client.post(f"{target.url}/hook", json=[1, 2])
            third = client.post(f"{target.url}/hook", content=b"not json")
        assert [first.status_code, second.status_code, third.status_code] == [500, 429, 200]
        assert second.headers["retry-after"] == "3"
        assert second.json() == {"error": "slow down"}
        recorded = target.wait_for(3)
        assert recorded[0].path == "/hook?x=1"
        assert recorded[0].headers["x-test"] == "yes"
        assert recorded[0].json == {"a": 1}
        assert recorded[1].json == [1, 2]
        assert recorded[2].json is None
        assert recorded[2].body == b"not json"


def test_wait_for_fails_saying_how_many_arrived() -> None:
    with Recorder() as target, pytest.raises(AssertionError, match="got 0 request"):
        target.wait_for(1, timeout=0.2)


def test_refused_url_refuses_connections() -> None:
    with pytest.raises(httpx.ConnectError):
        httpx.post(refused_url("/hook"), json={})
