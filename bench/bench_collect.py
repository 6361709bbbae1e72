"""`digest collect` against reader and rss2email on 200 feeds × 50 entries served from 127.0.0.1.

    python bench/bench_collect.py [--feeds 200] [--repeats 3] [--profile]

The corpus is ../shared/peer-bench's (make_feeds.py: arXiv-shaped RSS and Atom, day 1 and
day 2 with 10 new entries per feed), served by bench/_feed_server.py (ETag, Last-Modified,
keep-alive) in a child process. In the same run, each tool does, on a fresh state:

    first      every feed fetched and every entry stored
    nothing    the same files again: conditional GETs answered 304
    daily      the day-2 files: 10 new entries per feed

digest is timed as a real `digest collect` process, start-up included, and its peak RSS is
read from the kernel (wait4). reader is timed as peer-bench's bench_reader does it, inside
one process around update_feeds (its start-up is not counted: the ratio is in reader's
favour); the nothing-new run is update_feeds(scheduled=False), as reader would otherwise
skip feeds that are not due. rss2email is timed as peer-bench's bench_rss2email does it: a
whole `r2e run` that mails every new entry to peer-bench's SMTP sink.

The peers run from their own virtualenv (default /tmp/benchvenv, or $PEER_PY), created
from ../shared/peer-bench/requirements.txt when it is missing; never the project's.
Targets: first ≤ 1/3 of reader and ≤ 1/10 of rss2email; nothing ≤ 0.5 s; daily ≤ 1/3 of
reader; digest's peak RSS ≤ 256 MiB.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _data import ROOT, peer_bench

PEER_BENCH = peer_bench()
import _common as peers  # noqa: E402  (../shared/peer-bench)
from bench_rss2email import write_config as r2e_config  # noqa: E402

DIGEST = Path(sys.executable).with_name("digest")
PEER_PY = Path(os.environ.get("PEER_PY", "/tmp/benchvenv/bin/python"))
SERVER = Path(__file__).resolve().with_name("_feed_server.py")
WORK = peers.WORK / "collect"
DAYS = {"first": "2026-11-23T06:00:00Z", "nothing": "2026-11-23T07:00:00Z"}
DAYS["daily"] = "2026-11-24T06:00:00Z"
RUNS = ("first", "nothing", "daily")
# An installed digest has its bytecode compiled by pip; an editable one under
# PYTHONDONTWRITEBYTECODE would compile every module on every run instead.
DIGEST_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}

# reader's side, run by the peers' Python: peer-bench's own fresh_db and update
READER = """
import sys
sys.path.insert(0, sys.argv[1])
from pathlib import Path
import bench_reader
db, action, urls = Path(sys.argv[2]), sys.argv[3], Path(sys.argv[4]).read_text().split()
if action == "fresh":
    bench_reader.fresh_db(db, urls)
else:
    want, forced = int(sys.argv[5]), action == "forced"
    print(bench_reader.update(db, want, **({"scheduled": False} if forced else {})))
"""


def peer_python() -> Path:
    """The peers' own virtualenv, made from peer-bench's requirements.txt when missing."""
    if not PEER_PY.exists():
        print(f"creating {PEER_PY.parent.parent} for reader and rss2email …", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(PEER_PY.parent.parent)], check=True)
        requirements = str(PEER_BENCH / "requirements.txt")
        subprocess.run([str(PEER_PY), "-m", "pip", "install", "-q", "-r", requirements], check=True)
    return PEER_PY


def stage(serve: Path, day: Path, names: list[str]) -> None:
    for name in names:
        shutil.copy2(
            day / name, serve / name
        )  # keeps the mtime: Last-Modified and ETag move by day


def serve(root: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = peers.free_port()
    proc = subprocess.Popen([sys.executable, str(SERVER), str(port), str(root)])
    peers.wait_port(port)
    return proc, f"http://{peers.LOOPBACK}:{port}/"


def digest_run(config: Path, now: str) -> tuple[float, int, int]:
    """(seconds, new entries, peak RSS in KiB) of one `digest collect` process."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [str(DIGEST), "collect", "--config", str(config), "--now", now],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=DIGEST_ENV,
    )
    assert proc.stderr is not None
    err = proc.stderr.read().decode()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    found = re.search(r"collected (\d+) feeds: (\d+) new entries, (\d+) failed", err)
    if proc.returncode != 0 or found is None or found[3] != "0":
        sys.exit(f"bench_collect: digest collect failed ({proc.returncode}): {err[-600:]}")
    return seconds, int(found[2]), usage.ru_maxrss


def reader_run(py: Path, db: Path, urls: Path, action: str, want: int) -> float:
    args = [str(py), "-c", READER, str(PEER_BENCH), str(db), action, str(urls), str(want)]
    done = subprocess.run(args, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"bench_collect: reader {action} failed: {done.stderr.strip()[-600:]}")
    return float(done.stdout.strip() or 0)


def r2e_run(py: Path, cfg: Path, data: Path, sink: peers.SmtpSink, want: int) -> float:
    before = sink.stats()["messages"]
    t0 = time.perf_counter()
    done = subprocess.run(
        [str(py.with_name("r2e")), "-c", str(cfg), "-d", str(data), "run"],
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - t0
    sent = sink.stats()["messages"] - before
    if done.returncode != 0 or sent != want:
        sys.exit(f"bench_collect: r2e run sent {sent} of {want}: {done.stderr.strip()[-600:]}")
    return seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--feeds", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--profile", action="store_true", help="also cProfile one first run")
    ap.add_argument("--no-r2e", action="store_true", help="skip rss2email (the slow peer)")
    a = ap.parse_args()
    py = peer_python()
    day1, day2 = peers.corpus(day=1), peers.corpus(day=2)
    names = [p.name for p in peers.feed_files(day1)][: a.feeds]
    shutil.rmtree(WORK, ignore_errors=True)
    root = WORK / "serve"
    root.mkdir(parents=True)
    times: dict[str, dict[str, list[float]]] = {
        tool: {run: [] for run in RUNS} for tool in ("digest", "reader", "rss2email")
    }
    rss: list[int] = []
    new: dict[str, int] = {}
    server, url = serve(root)
    try:
        with peers.SmtpSink() as sink:
            feeds = "".join(f'[[feeds]]\nname = "{n}"\nurl = "{url}{n}"\n' for n in names)
            urls = WORK / "urls.txt"
            urls.write_text("\n".join(url + n for n in names))
            for rep in range(a.repeats):
                config = WORK / f"digest-{rep}.toml"
                config.write_text(f'[digest]\nstate = "digest-{rep}.sqlite"\n{feeds}')
                for run in RUNS:
                    stage(root, day2 if run == "daily" else day1, names)
                    seconds, count, peak = digest_run(config, DAYS[run])
                    times["digest"][run].append(seconds)
                    rss.append(peak)
                    new[run] = count
                if new["nothing"]:
                    sys.exit(f"bench_collect: digest stored {new['nothing']} entries on 304s")
                db = WORK / f"reader-{rep}.sqlite"
                stage(root, day1, names)
                reader_run(py, db, urls, "fresh", 0)
                for run, action, want in (
                    ("first", "update", 50 * len(names)),
                    ("nothing", "forced", 0),
                    ("daily", "forced", 10 * len(names)),
                ):
                    stage(root, day2 if run == "daily" else day1, names)
                    times["reader"][run].append(reader_run(py, db, urls, action, want))
                if a.no_r2e:
                    continue
                cfg, data = WORK / f"r2e-{rep}.cfg", WORK / f"r2e-{rep}.json"
                r2e_config(cfg, url, names, sink.port, False)
                for run, want in (("first", 50 * len(names)), ("nothing", 0)):
                    stage(root, day1, names)
                    times["rss2email"][run].append(r2e_run(py, cfg, data, sink, want))
                stage(root, day2, names)
                times["rss2email"]["daily"].append(r2e_run(py, cfg, data, sink, 10 * len(names)))
            if a.profile:
                stage(root, day1, names)
                profile_first_run(WORK / "digest-0.toml")
    finally:
        peers.stop(server)
    report(times, rss, new, len(names), a.no_r2e)


def report(
    times: dict[str, dict[str, list[float]]], rss: list[int], new: dict[str, int], feeds: int,
    no_r2e: bool,
) -> None:  # fmt: skip
    med = {t: {r: statistics.median(v) for r, v in runs.items() if v} for t, runs in times.items()}
    d, reader, r2e = med["digest"], med["reader"], med["rss2email"]
    peak = max(rss) / 1024
    print(f"{feeds} feeds × 50 entries on 127.0.0.1; medians of {len(times['digest']['first'])}")
    print(
        f"  {'run':10s} {'digest':>9s} {'reader':>9s} {'rss2email':>10s}"
        "   digest/reader  digest/r2e"
    )
    for run in RUNS:
        r2e_s = f"{r2e[run]:9.2f}s" if run in r2e else f"{'-':>10s}"
        r2e_ratio = f"{d[run] / r2e[run]:10.3f}" if run in r2e else f"{'-':>10s}"
        print(
            f"  {run:10s} {d[run]:8.3f}s {reader[run]:8.3f}s {r2e_s}   "
            f"{d[run] / reader[run]:13.3f}  {r2e_ratio}"
        )
    print(f"  digest stored {new['first']} entries on the first run, {new['daily']} on the daily")
    checks = [
        ("first ≤ 1/3 of reader", d["first"] <= reader["first"] / 3),
        ("nothing-new ≤ 0.5 s", d["nothing"] <= 0.5),
        ("daily ≤ 1/3 of reader", d["daily"] <= reader["daily"] / 3),
        ("peak RSS ≤ 256 MiB", peak <= 256),
    ]
    if not no_r2e:
        checks.insert(1, ("first ≤ 1/10 of rss2email", d["first"] <= r2e["first"] / 10))
    for label, ok in checks:
        print(f"  {'ok  ' if ok else 'MISS'} {label}")
    r2e_part = "" if no_r2e else f", {d['first'] / r2e['first']:.3f}× rss2email"
    print(
        f"\nRESULT collect ({feeds} feeds): first {d['first']:.2f}s "
        f"({d['first'] / reader['first']:.2f}× reader{r2e_part}), "
        f"nothing-new {d['nothing']:.2f}s, daily {d['daily']:.2f}s "
        f"({d['daily'] / reader['daily']:.2f}× reader), peak RSS {peak:.0f} MiB"
    )


PROFILE = """
import cProfile, sys
out, args = sys.argv[1], sys.argv[2:]
code = "from digest.cli import cli\\ntry:\\n    cli(args)\\nexcept SystemExit:\\n    pass"
cProfile.run(code, out)
"""


def profile_first_run(config: Path) -> None:
    """One more first run of `digest collect` under cProfile: where the time goes, by stage."""
    import pstats

    state = config.parent / "profile.sqlite"
    for old in config.parent.glob("profile.sqlite*"):
        old.unlink()
    profiled = config.with_name("profile.toml")
    profiled.write_text(re.sub(r'state = "[^"]+"', f'state = "{state.name}"', config.read_text()))
    out = WORK / "collect.prof"
    args = ["collect", "--config", str(profiled), "--now", DAYS["first"]]
    subprocess.run(
        [sys.executable, "-c", PROFILE, str(out), *args], check=True, capture_output=True
    )
    stats = pstats.Stats(str(out))
    entries = stats.stats  # type: ignore[attr-defined]
    total = max(v[3] for v in entries.values())

    def cumulative(suffix: str, func: str) -> float:
        found = [v[3] for k, v in entries.items() if k[0].endswith(suffix) and k[2] == func]
        return max(found, default=0.0)

    stages = {
        "imports (start-up)": cumulative("digest/cli.py", "<module>"),
        "parse": cumulative("digest/parse.py", "parse_feed"),
        "dedupe": cumulative("digest/dedupe.py", "merge"),
        "store (SQLite)": cumulative("digest/state/sqlite/feeds.py", "record_feed"),
    }
    # a coroutine's own time is split over its resumptions: fetching is the whole of
    # pipeline.collect less the stages that ran inside it
    loop = cumulative("digest/pipeline.py", "collect")
    stages["fetch (httpx, event loop)"] = loop - sum(stages[k] for k in list(stages)[1:])
    print(f"  cProfile of one more first run ({total:.2f}s under the profiler), per stage:")
    for label, seconds in stages.items():
        print(f"    {label:28s} {seconds:6.2f}s  {seconds / total:5.0%}")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
