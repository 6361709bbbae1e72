"""The whole `digest run`, end to end, for many subscribers: wall time, messages/s, peak RSS.

    python bench/bench_run.py [--sizes 1000:own,10000:own,100000:500] [--files-upto 10000]
                              [--raw-sample 5000] [--repeats 1]

Each size is SUBSCRIBERS:PROFILES ("own": a keyword profile per subscriber). For each size,
in a fresh work directory, a real `digest run --config … --now …` process (start-up, config,
collect of ~1,100 entries from 20 local feeds of ../shared/peer-bench's arXiv-shaped corpus,
ranking, rendering, the outbox, sending) is timed from outside, its peak RSS read from the
kernel (wait4):
  - with SMTP to ../shared/peer-bench's aiosmtpd sink on 127.0.0.1 (its own process), over
    digest's default 4 connections; the sink must count exactly one message per subscriber;
  - with file output (no [smtp]), for sizes up to --files-upto (3 files per subscriber).
The floor is ../shared/peer-bench's raw asyncio SMTP client sending the bytes digest wrote
as files (the same messages) over the same 4 connections to the same sink, in the same run
(up to --raw-sample messages: its rate is what is compared). Printed per size: wall,
messages/s of the whole run and its ratio to the raw client's, peak RSS; then the marginal
cost of one more subscriber between consecutive sizes with profiles of their own.

Targets (issue "A morning for 100,000 subscribers"): marginal cost <= 2 ms a subscriber,
whole-run messages/s >= 60 % of the raw client's, 100,000 subscribers sharing 500 profiles
<= 6 minutes with peak RSS <= 1 GiB.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from _data import ROOT, peer_bench

peer_bench()
import _common as peers  # noqa: E402  (../shared/peer-bench)
from bench_smtp import raw_pool  # noqa: E402

NOW = "2026-11-23T06:00:00+00:00"
FEEDS, ENTRIES = 20, 55
CONNECTIONS = 4
ZONES = ("Europe/Berlin", "America/New_York", "Asia/Kolkata", "UTC", "Asia/Tokyo")
# words and phrases of the corpus's own vocabulary (arXiv titles and abstracts)
VOCABULARY = (
    "reinforcement learning", "language model", "LLM", "agent", "reasoning", "retrieval",
    "diffusion", "image", "video", "3D", "robot", "policy", "reward", "alignment", "RLHF",
    "benchmark", "dataset", "transformer*", "attention", "graph", "speech", "audio",
    "multimodal", "vision-language", "segmentation", "detection", "planning", "memory",
    "code generation", "medical", "privacy", "federated", "quantization", "sparse",
    "distillation", "contrastive", "embedding", "tokenizer", "scaling", "safety",
    "hallucination", "instruction", "preference", "optimization", "inference", "efficient",
    "generation", "evaluation", "representation", "uncertainty", "causal", "theory",
    "physics", "protein", "molecule", "time series", "forecasting", "recommendation",
    "knowledge graph", "question answering",
)  # fmt: skip


@dataclass(frozen=True)
class Size:
    subscribers: int
    profiles: int | None  # None: one per subscriber

    @property
    def label(self) -> str:
        shared = "own profiles" if self.profiles is None else f"{self.profiles} profiles"
        return f"{self.subscribers:,} subscribers, {shared}"


@dataclass(frozen=True)
class Run:
    wall: float
    max_rss_kib: int
    delivered: int


def parse_sizes(text: str) -> list[Size]:
    sizes = []
    for part in text.split(","):
        n, _, p = part.partition(":")
        sizes.append(Size(int(n), None if p in ("", "own") else int(p)))
    return sizes


def profile_table(i: int) -> str:
    rng = random.Random(i)
    terms = rng.sample(VOCABULARY, 6)
    keywords = ", ".join(f'"{t}" = {rng.choice((1, 1, 2, 3))}' for t in terms)
    return f"[profiles.p{i}]\nkeywords = {{ {keywords} }}\n"


def write_config(work: Path, size: Size, feeds: list[Path], smtp_port: int | None) -> Path:
    """A config with `size.subscribers` subscribers; SMTP to the sink, or files."""
    profiles = size.profiles or size.subscribers
    lines = [
        "[digest]",
        'title = "Morning papers"',
        'state = "state.sqlite"',
        'output = "out"',
        "max_entries = 20",
        "",
    ]
    if smtp_port is not None:
        lines += [
            "[smtp]",
            'host = "127.0.0.1"',
            f"port = {smtp_port}",
            'security = "none"',
            'from = "Morning papers <digest@bench.invalid>"',
            f"connections = {CONNECTIONS}",
            "",
        ]
    for f in feeds:
        lines += ["[[feeds]]", f'name = "{f.stem}"', f'url = "{f}"', ""]
    text = "\n".join(lines) + "\n" + "".join(profile_table(i) for i in range(profiles))
    subs = "".join(
        f'[[subscribers]]\nname = "s{i}"\nemail = "s{i}@bench.invalid"\n'
        f'profile = "p{i % profiles}"\ntimezone = "{ZONES[i % len(ZONES)]}"\n'
        for i in range(size.subscribers)
    )
    path = work / "bench.toml"
    path.write_text(text + subs)
    return path


def digest_command() -> list[str]:
    exe = Path(sys.executable).parent / "digest"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "digest.cli"]


def run_digest(config: Path) -> tuple[float, int, int]:
    """`digest run` as its own process: (wall seconds, peak RSS in KiB, exit status)."""
    cmd = [*digest_command(), "run", "--config", str(config), "--now", NOW]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        tail = err.decode(errors="replace").strip().splitlines()[-5:]
        raise SystemExit(f"bench_run: digest run exited {proc.returncode}: " + " | ".join(tail))
    return wall, usage.ru_maxrss, proc.returncode


def smtp_run(size: Size, feeds: list[Path], sink: peers.SmtpSink) -> Run:
    with tempfile.TemporaryDirectory(prefix="bench-run-") as tmp:
        config = write_config(Path(tmp), size, feeds, sink.port)
        before = sink.stats()["messages"]
        wall, rss, _ = run_digest(config)
        got = sink.stats()["messages"] - before
    if got != size.subscribers:
        raise SystemExit(f"bench_run: the sink got {got} messages for {size.subscribers}")
    return Run(wall, rss, got)


def files_run(size: Size, feeds: list[Path], keep: Path | None) -> Run:
    with tempfile.TemporaryDirectory(prefix="bench-run-") as tmp:
        work = Path(tmp)
        config = write_config(work, size, feeds, None)
        wall, rss, _ = run_digest(config)
        emails = sorted((work / "out").rglob("*.eml"))
        if len(emails) != size.subscribers:
            raise SystemExit(f"bench_run: {len(emails)} emails written for {size.subscribers}")
        if keep is not None:
            shutil.rmtree(keep, ignore_errors=True)
            keep.mkdir(parents=True)
            for path in emails:
                shutil.copy(path, keep / path.name)
    return Run(wall, rss, len(emails))


_HEADER_END = re.compile(rb"\r?\n\r?\n")
_TO = re.compile(rb"^To:.*?<?([^<>\s]+@[^<>\s]+)>?\s*$", re.MULTILINE | re.IGNORECASE)


def wire(raw: bytes) -> tuple[bytes, bytes]:
    """(recipient, DATA payload) of a written .eml: CRLF line ends, dots stuffed."""
    header = _HEADER_END.split(raw, maxsplit=1)[0]
    found = _TO.search(header)
    if found is None:
        raise SystemExit("bench_run: a written email has no To address")
    data = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    data = re.sub(rb"(?m)^\.", b"..", data)
    return found.group(1), data if data.endswith(b"\r\n") else data + b"\r\n"


def raw_rate(emails: Path, sample: int, sink: peers.SmtpSink) -> tuple[float, int]:
    """Messages/s of the raw asyncio client sending digest's own messages to the sink."""
    blobs = [wire(p.read_bytes()) for p in sorted(emails.iterdir())[:sample]]
    before = sink.stats()["messages"]
    t0 = time.perf_counter()
    asyncio.run(raw_pool(blobs, sink.port, CONNECTIONS))
    elapsed = time.perf_counter() - t0
    if sink.stats()["messages"] - before != len(blobs):
        raise SystemExit("bench_run: the raw client's messages did not all arrive")
    return len(blobs) / elapsed, len(blobs)


def mib(kib: int) -> str:
    return f"{kib / 1024:,.0f} MiB"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000:own,10000:own,100000:500", type=parse_sizes)
    ap.add_argument("--files-upto", type=int, default=10_000, help="largest size run to files")
    ap.add_argument("--raw-sample", type=int, default=5_000, help="messages the raw client sends")
    ap.add_argument("--repeats", type=int, default=1, help="runs of each size (median quoted)")
    a = ap.parse_args()
    feeds = peers.feed_files(peers.corpus(FEEDS, ENTRIES, 1))
    keep = Path(tempfile.mkdtemp(prefix="bench-run-emails-"))
    results: list[tuple[Size, Run, Run | None]] = []
    raw: tuple[float, int] | None = None
    try:
        with peers.SmtpSink() as sink:
            for size in a.sizes:
                smtp_runs, file_runs = [], []
                for _ in range(a.repeats):
                    smtp_runs.append(smtp_run(size, feeds, sink))
                    if size.subscribers <= a.files_upto:
                        file_runs.append(files_run(size, feeds, keep))
                smtp = min(smtp_runs, key=lambda r: abs(r.wall - median(smtp_runs)))
                files = (
                    min(file_runs, key=lambda r: abs(r.wall - median(file_runs)))
                    if file_runs
                    else None
                )
                if files is not None:
                    raw = raw_rate(keep, a.raw_sample, sink)
                results.append((size, smtp, files))
                report(size, smtp, files, raw)
    finally:
        shutil.rmtree(keep, ignore_errors=True)
    summary(results, raw)


def median(runs: list[Run]) -> float:
    return statistics.median(r.wall for r in runs)


def report(size: Size, smtp: Run, files: Run | None, raw: tuple[float, int] | None) -> None:
    rate = size.subscribers / smtp.wall
    line = f"{size.label}: smtp {smtp.wall:.1f} s, {rate:,.0f} msgs/s"
    line += f", peak RSS {mib(smtp.max_rss_kib)}"
    if raw is not None:
        line += f", {rate / raw[0]:.0%} of the raw client's {raw[0]:,.0f}/s"
    if files is not None:
        line += f"; files {files.wall:.1f} s, peak RSS {mib(files.max_rss_kib)}"
    print(line, flush=True)


def summary(results: list[tuple[Size, Run, Run | None]], raw: tuple[float, int] | None) -> None:
    print()
    print(f"{'subscribers':>12} {'profiles':>9} {'smtp wall':>10} {'msgs/s':>8} {'peak RSS':>9}"
          f" {'files wall':>11} {'files RSS':>10}")  # fmt: skip
    for size, smtp, files in results:
        profiles = "own" if size.profiles is None else f"{size.profiles:,}"
        f_wall = f"{files.wall:.1f} s" if files else "-"
        f_rss = mib(files.max_rss_kib) if files else "-"
        print(
            f"{size.subscribers:>12,} {profiles:>9} {smtp.wall:>8.1f} s "
            f"{size.subscribers / smtp.wall:>8,.0f} {mib(smtp.max_rss_kib):>9} "
            f"{f_wall:>11} {f_rss:>10}"
        )
    own = [(s, m, f) for s, m, f in results if s.profiles is None]
    marginal = []
    for (s1, m1, f1), (s2, m2, f2) in zip(own, own[1:], strict=False):
        extra = s2.subscribers - s1.subscribers
        smtp_ms = (m2.wall - m1.wall) / extra * 1000
        text = f"marginal cost {s1.subscribers:,}→{s2.subscribers:,} (own profiles): "
        text += f"smtp {smtp_ms:.2f} ms"
        if f1 and f2:
            files_ms = (f2.wall - f1.wall) / extra * 1000
            text += f", files {files_ms:.2f} ms"
            marginal.append(max(smtp_ms, files_ms))
        else:
            marginal.append(smtp_ms)
        print(text + " a subscriber (target <= 2 ms)")
    parts = []
    if marginal:
        parts.append(f"marginal {max(marginal):.2f} ms/subscriber")
    if raw is not None:
        biggest = results[-1]
        rate = biggest[0].subscribers / biggest[1].wall
        parts.append(
            f"{biggest[0].subscribers:,} subscribers {biggest[1].wall:.0f} s, {rate:,.0f} msgs/s = "
            f"{rate / raw[0]:.0%} of raw {raw[0]:,.0f}/s ({raw[1]:,} msgs), "
            f"peak RSS {mib(biggest[1].max_rss_kib)}"
        )
    print("RESULT run: " + "; ".join(parts))


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "bench"))
    main()
