"""Tenant policies: quotas and sampling, stored on the tenant and handed to the ingest path with its keys."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tenants import logic
from tenants.logic import TenantPolicy

pytestmark = pytest.mark.django_db


def test_defaults_mean_unlimited_and_keep_every_trace():
    created = logic.create_tenant("acme")
    ref, policy = logic.tenant_policy("acme")
    assert ref == logic.TenantRef(created.tenant_id, "acme")
    assert policy == TenantPolicy()
    assert not policy.limited
    assert policy.effective_burst is None
    assert TenantPolicy(rate_limit_per_second=100).effective_burst == 200
    assert TenantPolicy(rate_limit_per_second=100, burst=150).effective_burst == 150


def test_load_ingest_keys_carries_each_tenants_policy_in_one_query():
    policies = {
        "acme": TenantPolicy(rate_limit_per_second=1000, burst=2000, daily_records_cap=10**9),
        "beta": TenantPolicy(daily_bytes_cap=5 << 30, trace_sample_rate=0.25, trace_slow_threshold_ms=500),
        "gamma": TenantPolicy(),
    }
    hashes = {}
    for name, policy in policies.items():
        logic.create_tenant(name)
        assert logic.set_tenant_policy(name, policy) == policy
        hashes[name] = [logic.hash_key(logic.issue_ingest_key(name, f"k{i}").raw) for i in range(3)]

    with CaptureQueriesContext(connection) as queries:
        keys = logic.load_ingest_keys()
    assert len(queries) == 1
    for name, policy in policies.items():
        principals = [keys[h] for h in hashes[name]]
        assert {p.tenant_name for p in principals} == {name}
        assert all(p.policy == policy for p in principals)
        assert len({id(p.policy) for p in principals}) == 1  # one shared policy object per tenant


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        (TenantPolicy(trace_sample_rate=0.0), "trace_sample_rate: 0.0 is not a sample rate"),
        (TenantPolicy(trace_sample_rate=1.5), "trace_sample_rate: 1.5 is not a sample rate"),
        (TenantPolicy(rate_limit_per_second=0), "rate_limit_records_per_second: Ensure this value"),
        (TenantPolicy(burst=10), "rate_limit_burst: a burst needs a rate limit"),
    ],
)
def test_invalid_policies_are_refused_with_the_field(policy: TenantPolicy, message: str):
    logic.create_tenant("acme")
    with pytest.raises(logic.InvalidPolicy, match=f"^policy for tenant acme is not valid: {message}"):
        logic.set_tenant_policy("acme", policy)
    assert logic.tenant_policy("acme")[1] == TenantPolicy()
