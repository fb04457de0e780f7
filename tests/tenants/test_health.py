from __future__ import annotations

from pathlib import Path

import pytest
from django.test import Client

from ollystack.clickhouse import Backend, Signal, get_backend, set_backend


def test_healthz():
    response = Client().get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_when_the_engine_answers():
    get_backend()
    response = Client().get("/readyz")
    assert response.status_code == 200, response.json()


class SilentBackend(Backend):
    def ping(self) -> bool:
        return False

    def close(self) -> None:
        pass

    def insert_otlp_segment(self, signal: Signal, path: Path, dedup_token: str, sampled: bool = False) -> int:
        return 0


class BrokenBackend(SilentBackend):
    def ping(self) -> bool:
        raise RuntimeError("connection refused")


@pytest.mark.parametrize(
    ("backend", "reason"), [(SilentBackend, "did not answer"), (BrokenBackend, "refused")]
)
def test_readyz_when_the_engine_does_not_answer(backend, reason):
    original = get_backend()
    set_backend(backend.__new__(backend))
    try:
        response = Client().get("/readyz")
    finally:
        set_backend(original)
    assert response.status_code == 503
    assert reason in response.json()["reason"]
