"""Tiered storage: the sample server configuration is valid and has what the tables' TTL moves need, and
with it the tables really place parts on the hot, warm and cold volumes by age.

The moves run on the embedded engine started with the sample policy, its disks made local directories (no
S3 here), in a process of its own (one engine per process).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from ollystack.clickhouse.tables import COLD_VOLUME, WARM_VOLUME

REPO = Path(__file__).resolve().parents[2]
STORAGE_XML = REPO / "deploy" / "clickhouse" / "storage.xml"
CLUSTER_XML = REPO / "deploy" / "clickhouse" / "cluster.xml"
POLICY = "tiered"


def test_sample_storage_configuration_is_valid() -> None:
    root = ET.parse(STORAGE_XML).getroot()  # well-formed, or this raises
    assert root.tag == "clickhouse"
    disks = root.find("storage_configuration/disks")
    assert disks is not None
    defined = {disk.tag for disk in disks} | {"default"}
    policy = root.find(f"storage_configuration/policies/{POLICY}")
    assert policy is not None, f"the docs and README name the policy {POLICY!r}"
    volumes = policy.findall("volumes/*")
    assert [v.tag for v in volumes] == ["default", WARM_VOLUME, COLD_VOLUME]
    # tables created before the policy was configured can only switch to a policy that keeps their volume
    # "default" with its disk
    assert [d.text for d in volumes[0].findall("disk")] == ["default"]
    for volume in volumes:
        for disk in volume.findall("disk"):
            assert disk.text in defined, f"volume {volume.tag} uses undefined disk {disk.text}"
    types = {disk.tag: disk.findtext("type") for disk in disks}
    assert "s3" in types.values()
    for disk in disks:
        if disk.findtext("type") == "cache":
            assert disk.findtext("disk") in types, f"cache disk {disk.tag} caches an undefined disk"


def test_sample_cluster_configuration_is_valid() -> None:
    root = ET.parse(CLUSTER_XML).getroot()
    shards = root.findall("remote_servers/ollystack/shard")
    assert len(shards) == 2
    assert all(len(shard.findall("replica")) == 2 for shard in shards)
    assert root.findtext("macros/shard")
    assert root.findtext("macros/replica")
    assert root.findall("zookeeper/node")


def tiers_scenario(workdir: Path) -> dict[str, Any]:
    """Migrations with the sample policy, then rows dated today, 5 and 20 days ago: where their parts are."""
    tree = ET.parse(STORAGE_XML)
    disks = tree.getroot().find("storage_configuration/disks")
    assert disks is not None
    for disk in disks:
        for child in list(disk):
            disk.remove(child)
        ET.SubElement(disk, "path").text = f"{workdir / 'disks' / disk.tag}/"
    config = workdir / "storage.xml"
    tree.write(config)

    from ollystack.clickhouse import Signal, backends
    from ollystack.clickhouse.migrate import apply_migrations, storage_statements
    from ollystack.clickhouse.otlp import frame
    from ollystack.clickhouse.tables import SchemaOptions
    from tests.telemetry.builders import full_logs_request, full_trace_request

    backends.ENGINE_SETTINGS += f"&config-file={config}"
    backend = backends.EmbeddedBackend(workdir / "clickhouse")
    plain = SchemaOptions()
    apply_migrations(backend, log=lambda _m: None, options=plain)  # installed without tiers first
    tiered = SchemaOptions(storage_policy=POLICY, warm_after_days=3, cold_after_days=14)
    pending = storage_statements(backend, tiered)
    apply_migrations(backend, log=lambda _m: None, options=tiered)  # tiers configured later
    now = time.time_ns()
    for days in (0, 5, 20):
        shift = now - days * 86_400 * 10**9
        trace, logs = full_trace_request(bytes(16 - len(str(days))) + str(days).encode()), full_logs_request()
        for span in trace.resource_spans[0].scope_spans[0].spans:
            span.start_time_unix_nano, span.end_time_unix_nano = shift, shift + 1000
        for record in logs.resource_logs[0].scope_logs[0].log_records:
            record.time_unix_nano = shift
        for signal, request in ((Signal.TRACES, trace), (Signal.LOGS, logs)):
            path = workdir / f"{signal.value}-{days}.seg"
            path.write_bytes(frame("acme", request.SerializeToString(), retention_days=30))
            backend.insert_otlp_segment(signal, path, path.stem)
    placement = {}
    for table in ("spans", "logs"):
        rows = backend.query(
            "SELECT dateDiff('day', toDate(partition), today()) AS age, any(disk_name) FROM system.parts "
            "WHERE active AND database = currentDatabase() AND table = {t:String} GROUP BY age ORDER BY age",
            {"t": table},
        ).rows
        placement[table] = {str(age): disk for age, disk in rows}
    policies = backend.query(
        "SELECT name, storage_policy FROM system.tables WHERE name IN ('spans', 'logs', 'metric_points')"
    ).rows
    result = {
        "pending_before": len(pending),
        "pending_after": storage_statements(backend, tiered),
        "pending_if_ages_change": len(
            storage_statements(
                backend, SchemaOptions(storage_policy=POLICY, warm_after_days=7, cold_after_days=30)
            )
        ),
        "placement": placement,
        "policies": dict(policies),
    }
    backend.close()
    return result


def test_parts_move_to_warm_and_cold_by_age(tmp_path: Path) -> None:
    call = f"m.tiers_scenario(pathlib.Path({str(tmp_path)!r}))"
    code = f"import json, pathlib, {__name__} as m; print(json.dumps({call}))"
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=240, check=False
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    # configuring tiers after install: each table switches policy and gets the moves
    assert result["pending_before"] == 6
    assert result["pending_after"] == []
    assert result["pending_if_ages_change"] == 3  # new ages: the TTL changes, the policy stays
    assert result["policies"] == {"spans": POLICY, "logs": POLICY, "metric_points": POLICY}
    expected = {"0": "default", "5": "warm", "20": "s3_cold_cached"}  # hot volume = the default disk
    assert result["placement"] == {"spans": expected, "logs": expected}
