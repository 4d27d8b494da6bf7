"""docs/benchmarks.md and its plots, from the generator's results (JSON lines)."""

from __future__ import annotations

import json
import os
import platform
import string
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.harness.plan import PROFILES, TARGETS
from bench.harness.servers import versions

Result = dict[str, Any]
TEMPLATE = string.Template((Path(__file__).parent / "benchmarks.md.template").read_text())
NOTHING_WRONG = "Nothing: every run delivered every accepted message exactly once, without errors."


def load(path: Path) -> list[Result]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def forget(path: Path, runs: set[tuple[str, str]]) -> None:
    """Drops earlier results of (peer, scenario) pairs that are about to run again."""
    kept = [r for r in load(path) if (r["peer"], r["scenario"]) not in runs]
    path.write_text("".join(json.dumps(r) + "\n" for r in kept))


def _one(results: list[Result], peer: str, scenario: str) -> Result | None:
    found = [r for r in results if r["peer"] == peer and r["scenario"] == scenario]
    return found[-1] if found else None


def _chat_steps(results: list[Result], peer: str) -> list[Result]:
    return [r for r in results if r["peer"] == peer and r["scenario"] == "chat"]


def _chat_max(results: list[Result], peer: str) -> Result | None:
    closed = [r for r in _chat_steps(results, peer) if r["params"].get("mode") == "closed loop"]
    return closed[-1] if closed else None


def _chat_at(results: list[Result], peer: str, load: float) -> Result | None:
    found = [
        r
        for r in _chat_steps(results, peer)
        if abs(r["params"].get("load_of_max", -1) - load) < 1e-6
    ]
    return found[-1] if found else None


@dataclass(frozen=True)
class Row:
    label: str
    value: Callable[[list[Result], str], float | None]
    unit: str = ""
    higher_is_better: bool = True
    digits: int = 0


def _dig(r: Any, path: tuple[str, ...]) -> float | None:
    """The number at `path` inside a result, if it is there."""
    for key in path:
        if r is None:
            return None
        r = r.get(key)
    return float(r) if isinstance(r, int | float) else None


def _get(scenario: str, *path: str) -> Callable[[list[Result], str], float | None]:
    return lambda results, peer: _dig(_one(results, peer, scenario), path)


def _chat(load: float | None, *path: str) -> Callable[[list[Result], str], float | None]:
    def read(results: list[Result], peer: str) -> float | None:
        step = _chat_max(results, peer) if load is None else _chat_at(results, peer, load)
        return _dig(step, path)

    return read


def _lost_or_duplicated(results: list[Result], peer: str) -> float | None:
    mine = [r for r in results if r["peer"] == peer and "ledger" in r]
    if not mine:
        return None
    return float(sum(r["ledger"]["lost"] + r["ledger"]["duplicates"] for r in mine))


def _ms(label: str, read: Callable[[list[Result], str], float | None]) -> Row:
    """A latency row: milliseconds, lower is better."""
    return Row(label, read, "ms", higher_is_better=False, digits=1)


def _count(label: str, read: Callable[[list[Result], str], float | None]) -> Row:
    """A count of failures: lower is better."""
    return Row(label, read, higher_is_better=False)


ROWS = (
    Row("1:1 chat, most delivered/s (closed loop)", _chat(None, "delivered_per_second")),
    Row("1:1 chat at 70 % of that: delivered/s", _chat(0.7, "delivered_per_second")),
    _ms("1:1 chat at 70 %: p50 latency", _chat(0.7, "latency", "p50_ms")),
    _ms("1:1 chat at 70 %: p99 latency", _chat(0.7, "latency", "p99_ms")),
    _ms("1:1 chat at 70 %: p99.9 latency", _chat(0.7, "latency", "p999_ms")),
    Row("group: deliveries/s", _get("group", "delivered_per_second")),
    _ms("group: send→every online member p99", _get("group", "latency", "p99_ms")),
    _ms("group: send→last online member p50", _get("group", "extra", "last_member_p50_ms")),
    _ms("group: send→last online member p99", _get("group", "extra", "last_member_p99_ms")),
    Row("storm: devices connected", _get("storm", "extra", "connected")),
    _ms("storm: handshake p50", _get("storm", "latency", "p50_ms")),
    _ms("storm: handshake p99", _get("storm", "latency", "p99_ms")),
    _count(
        "storm: handshakes refused (then retried)", _get("storm", "extra", "refused_handshakes")
    ),
    _count("storm: streams that ended on their own", _get("storm", "extra", "streams_ended")),
    Row(
        "drain: seconds to deliver the stored backlog",
        _get("drain", "extra", "drain_seconds"),
        "s",
        higher_is_better=False,
        digits=2,
    ),
    Row("drain: delivered/s", _get("drain", "delivered_per_second")),
    Row("idle: devices connected", _get("idle", "extra", "connected")),
    Row(
        "idle: server memory per connection",
        _get("idle", "extra", "kib_per_connection"),
        "KiB",
        higher_is_better=False,
        digits=1,
    ),
    _count("idle: connections that ended while idle", _get("idle", "extra", "ended_while_idle")),
    _count("lost + duplicated messages, all runs", _lost_or_duplicated),
)


def _fmt(value: float | None, digits: int, unit: str) -> str:
    if value is None:
        return "—"
    text = f"{value:,.{digits}f}"
    return f"{text} {unit}".strip()


def _ratio(a: float | None, b: float | None, higher_is_better: bool) -> str:
    """a ÷ b, saying whether that is better or worse for a."""
    if a is None or b is None or b == 0 or a == b:
        return "—" if a != b or a is None else "1.00x"
    verdict = "better" if (a > b) == higher_is_better else "worse"
    return f"{a / b:.2f}x ({verdict})"


def _table(results: list[Result], peers: list[str]) -> list[str]:
    base = "ejabberd" if "ejabberd" in peers else None
    others = [p for p in peers if p != base]
    header = ["", *peers] + ([f"{p} ÷ ejabberd" for p in others] if base else [])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in ROWS:
        values = {p: row.value(results, p) for p in peers}
        cells = [row.label] + [_fmt(values[p], row.digits, row.unit) for p in peers]
        if base:
            cells += [_ratio(values[p], values[base], row.higher_is_better) for p in others]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _machine() -> list[str]:
    model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory = ""
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        kb = int(meminfo.read_text().split()[1])
        memory = f"{kb / 1024 / 1024:.0f} GiB"
    kernel = platform.release()
    cpu = f"{os.cpu_count()} cores, {model or 'unknown model'}"
    return [
        f"- CPU: {cpu}; memory {memory}; Linux {kernel}",
        "- Everything on this one machine: the server under test, its stores, and the load"
        " generator (which competes with the server for the same cores).",
    ]


def _goals(results: list[Result], peers: list[str]) -> list[str]:
    lines = []
    ejabberd_max = _chat(None, "delivered_per_second")(results, "ejabberd")
    for peer in [p for p in peers if p.startswith("chatconnect")]:
        checks: list[tuple[str, bool | None, str]] = []
        ours = _chat(None, "delivered_per_second")(results, peer)
        checks.append(
            (
                "1:1 durable throughput ≥ ejabberd with archiving",
                None if ours is None or ejabberd_max is None else ours >= ejabberd_max,
                f"{_fmt(ours, 0, '/s')} vs {_fmt(ejabberd_max, 0, '/s')}",
            )
        )
        p99 = _chat(0.7, "latency", "p99_ms")(results, peer)
        checks.append(
            (
                "p99 ≤ 50 ms at 70 % of the maximum rate",
                None if p99 is None else p99 <= 50,
                _fmt(p99, 1, "ms"),
            )
        )
        last = _get("group", "extra", "last_member_p99_ms")(results, peer)
        checks.append(
            (
                "1,000-member group: send → last online member p99 ≤ 200 ms",
                None if last is None else last <= 200,
                _fmt(last, 1, "ms"),
            )
        )
        per_conn = _get("idle", "extra", "kib_per_connection")(results, peer)
        connected = _get("idle", "extra", "connected")(results, peer)
        checks.append(
            (
                "≤ 20 KB of server memory per idle connection at 10,000",
                None if per_conn is None else per_conn * 1.024 <= 20 and (connected or 0) >= 10_000,
                f"{_fmt(per_conn, 1, 'KiB')} at {_fmt(connected, 0, '')} connections",
            )
        )
        ended = _get("storm", "extra", "streams_ended")(results, peer)
        storm = _one(results, peer, "storm")
        shed_ok = storm is not None and all(
            k.startswith("UNAVAILABLE/OVERLOADED")
            for k in storm.get("errors", {})
            if not k.startswith("ENDED")
        )
        refusals = ", ".join(f"{k}: {v}" for k, v in (storm or {}).get("errors", {}).items())
        checks.append(
            (
                "connection storm: no crash, no stream cancelled, overload shed with retry hints",
                None if ended is None else ended == 0 and shed_ok,
                f"{_fmt(ended, 0, '')} streams ended; refusals: {refusals or 'none'}",
            )
        )
        bad = _lost_or_duplicated(results, peer)
        checks.append(
            (
                "zero loss and zero duplicates in every run",
                None if bad is None else bad == 0,
                _fmt(bad, 0, ""),
            )
        )
        lines.append(f"**{peer}**")
        lines.append("")
        for goal, met, evidence in checks:
            verdict = "not measured" if met is None else ("met" if met else "**not met**")
            lines.append(f"- {goal}: {verdict} ({evidence})")
        lines.append("")
    return lines


def _plots(results: list[Result], peers: list[str], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for index, peer in enumerate(peers):
        # Against the offered rate, in step order: an overloaded server delivers less than
        # it is offered, and its latency climbs; plotting by delivered rate would fold back.
        steps = sorted(
            (r for r in _chat_steps(results, peer) if r["params"].get("mode") == "open loop"),
            key=lambda r: r["params"]["offered_per_second"],
        )
        if steps:
            offered = [r["params"]["offered_per_second"] for r in steps]
            color = f"C{index}"
            ax.plot(
                offered,
                [r["latency"]["p99_ms"] for r in steps],
                marker="o",
                color=color,
                label=f"{peer} p99",
            )
            ax.plot(
                offered,
                [r["latency"]["p50_ms"] for r in steps],
                marker=".",
                color=color,
                linestyle="--",
                label=f"{peer} p50",
            )
    ax.set_yscale("log")
    written.append(
        _finish(
            fig,
            ax,
            title="Throughput against latency",
            axes=("offered messages per second (1:1, durable)", "send → deliver latency (ms)"),
            path=out / "throughput-latency.png",
        )
    )

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for peer in peers:
        idle = _one(results, peer, "idle")
        series = (idle or {}).get("series", {}).get("rss_mib_by_connections")
        if series:
            ax.plot([p[0] for p in series], [p[1] for p in series], marker="o", label=peer)
    written.append(
        _finish(
            fig,
            ax,
            title="Memory against connections",
            axes=("idle connections", "server resident memory (MiB)"),
            path=out / "memory-connections.png",
        )
    )
    return written


def _finish(fig: Any, ax: Any, *, title: str, axes: tuple[str, str], path: Path) -> Path:
    """Labels, grid and legend of one plot, written to `path` as PNG."""
    import matplotlib.pyplot as plt

    ax.set_xlabel(axes[0])
    ax.set_ylabel(axes[1])
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _commit() -> str:
    out = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    )
    return out.stdout.strip() or "unknown"


def write(results_path: Path, docs: Path, *, profile: str) -> list[Path]:
    results = load(results_path)
    peers = [t for t in TARGETS if any(r["peer"] == t for r in results)]
    plots = docs / "benchmarks"
    plots.mkdir(parents=True, exist_ok=True)
    written = _plots(results, peers, plots)
    found = versions()
    scenario_lines = [
        f"- `{s.name}`: `{' '.join(s.args)}`" + (" (ChatConnect only)" if s.needs_groups else "")
        for s in PROFILES[profile]
    ]
    notes = [f"- {r['peer']} {r['scenario']}: {n}" for r in results for n in r.get("notes", [])]
    text = TEMPLATE.substitute(
        machine="\n".join(_machine()),
        versions=", ".join(f"{k} {v}" for k, v in found.items() if v),
        commit=_commit(),
        profile=profile,
        table="\n".join(_table(results, peers)),
        goals="\n".join(_goals(results, peers)).rstrip(),
        scenarios="\n".join(scenario_lines),
        notes="\n".join(notes) or NOTHING_WRONG,
    )
    path = docs / "benchmarks.md"
    path.write_text(text)
    return [path, *written]
