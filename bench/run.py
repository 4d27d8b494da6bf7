"""`make bench`: every scenario against ChatConnect (embedded, and ScyllaDB + Redis) and
ejabberd, each on a freshly started, empty server, then docs/benchmarks.md and its plots.

    .venv/bin/python bench/run.py                         # everything (about 25 minutes)
    .venv/bin/python bench/run.py --profile quick         # a few minutes, not for publishing
    .venv/bin/python bench/run.py --targets ejabberd --scenarios chat
    .venv/bin/python bench/run.py --report-only           # rewrite the report from results

Results (one JSON object per scenario step) go to docs/benchmarks/results.jsonl.
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import report, servers
from bench.harness.plan import GROUP_TARGETS, PROFILES, TARGETS
from bench.harness.servers import ROOT, Target, say

RESULTS = ROOT / "docs" / "benchmarks" / "results.jsonl"


def _build_loadgen() -> str:
    say("building the Go load generator")
    out = subprocess.run(
        [str(ROOT / "bench" / "loadgen" / "build")], check=True, stdout=subprocess.PIPE, text=True
    )
    return out.stdout.strip().splitlines()[-1]


@contextlib.contextmanager
def _server(target: str) -> Iterator[Target]:
    if target == "chatconnect-embedded":
        with servers.chatconnect("embedded", 7711) as t:
            yield t
    elif target == "chatconnect-scylla":
        with servers.chatconnect("scylla", 7712) as t:
            yield t
    else:
        with servers.ejabberd() as t:
            yield t


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--profile", choices=sorted(PROFILES), default="full")
    parser.add_argument(
        "--targets", default=",".join(TARGETS), help=f"comma-separated, of {', '.join(TARGETS)}"
    )
    parser.add_argument(
        "--scenarios", default="", help="comma-separated scenario names (default: all)"
    )
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args()
    targets = [t for t in args.targets.split(",") if t]
    unknown = set(targets) - set(TARGETS)
    if unknown:
        parser.error(f"unknown targets {sorted(unknown)}; choose from {', '.join(TARGETS)}")
    if not args.report_only:
        run(args.profile, targets, [s for s in args.scenarios.split(",") if s], args.results)
    written = report.write(args.results, ROOT / "docs", profile=args.profile)
    say(f"wrote {', '.join(str(p.relative_to(ROOT)) for p in written)}")
    return 0


def run(profile: str, targets: list[str], only: list[str], results: Path) -> None:
    loadgen = _build_loadgen()
    if any(t.startswith("chatconnect-scylla") for t in targets):
        subprocess.run([str(ROOT / "tools" / "testenv"), "up"], check=True)
    plan = [s for s in PROFILES[profile] if not only or s.name in only]
    steps = [(t, s) for t in targets for s in plan if not s.needs_groups or t in GROUP_TARGETS]
    results.parent.mkdir(parents=True, exist_ok=True)
    # This run's results replace the earlier ones of the same target and scenario.
    report.forget(results, {(t, s.name) for t, s in steps})
    started = time.monotonic()
    for index, (target, scenario) in enumerate(steps, 1):
        elapsed = time.monotonic() - started
        say(f"[{index}/{len(steps)}] {scenario.name} on {target} (elapsed {elapsed:.0f} s)")
        with _server(target) as server:
            command = [
                loadgen,
                "-peer",
                server.peer,
                "-name",
                server.name,
                *server.args,
                "-scenario",
                scenario.name,
                *scenario.args,
                "-server-pid",
                ",".join(map(str, server.pids)),
                "-out",
                str(results),
            ]
            say("$ " + " ".join(command))
            subprocess.run(command, check=True)
    say(f"all {len(steps)} runs done in {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    sys.exit(main())
