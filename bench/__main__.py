"""`python -m bench` — run the benchmarks and print the figures (also written under var/bench/).

    python -m bench                          all of them, in the order of BENCHMARKS below
    python -m bench --only queries           some of them
    python -m bench --skip ingest
    python -m bench --only queries -- --spans 1000000    arguments after -- go to the one benchmark run

Each benchmark runs in its own process: the embedded engine binds a process to one data directory, and
each benchmark builds its own.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BENCHMARKS = {
    "ingest": "OTLP/gRPC ingest throughput of ingestd",
    "storage": "bytes on disk per record against the OTLP that came in",
    "queries": "read latency on 10 M spans and 10 M log records, read functions and REST endpoints",
    "promql": "PromQL endpoints against a real Prometheus on the same samples",
    "alerts": "alert latency: OTLP error burst to webhook notification, embedded and production profiles",
    "alerts_eval": "alert evaluation throughput: 1 000 rules of a realistic mix, PromQL rules apart",
    "ui": "browser UI on 10 M spans: server time of every page's responses, drawing a 5 000-span trace",
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    passed: list[str] = []
    if "--" in argv:
        at = argv.index("--")
        argv, passed = argv[:at], argv[at + 1 :]
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", nargs="+", choices=list(BENCHMARKS), help="run only these")
    parser.add_argument("--skip", nargs="+", choices=list(BENCHMARKS), default=[], help="do not run these")
    args = parser.parse_args(argv)
    chosen = [name for name in (args.only or BENCHMARKS) if name not in args.skip]
    if passed and len(chosen) != 1:
        parser.error("arguments after -- need exactly one benchmark (--only NAME)")

    failed = []
    for name in chosen:
        print(f"\n=== {name}: {BENCHMARKS[name]}", flush=True)
        if importlib.util.find_spec(f"bench.{name}") is None:
            print(f"skipped: bench/{name}.py does not exist yet", flush=True)
            continue
        started = time.monotonic()
        # bench.<name>.main() reads its arguments from sys.argv
        code = f"import sys; sys.argv[0] = 'bench.{name}'; from bench.{name} import main; main()"
        done = subprocess.run([sys.executable, "-c", code, *passed], cwd=REPO, check=False)  # noqa: S603
        verdict = "done" if done.returncode == 0 else "FAILED"
        print(f"=== {name}: {verdict} in {time.monotonic() - started:.0f} s", flush=True)
        if done.returncode != 0:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
