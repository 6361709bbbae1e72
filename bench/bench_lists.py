"""`load_config` on a config with a `[[subscriber_lists]]` CSV of 1,000 / 10,000 / 100,000
subscribers (four time zones, two profiles, some fields empty): best and median of 5, wall
and CPU time. Run: `.venv/bin/python bench/bench_lists.py [N ...]`."""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from digest.config import load_config

CONFIG = """
[[feeds]]
name = "papers"
url = "papers.rss"

[profiles.rl]
keywords = { RLHF = 2 }

[profiles.agents]
keywords = { agent = 1 }

[[subscriber_lists]]
path = "subscribers.csv"
"""
ZONES = ["Europe/Berlin", "America/New_York", "Asia/Tokyo", ""]


def write(directory: Path, n: int) -> Path:
    with (directory / "subscribers.csv").open("w", encoding="utf-8", newline="") as f:
        f.write("name,email,profile,send_at,timezone\r\n")
        for i in range(n):
            profile = "rl" if i % 2 else "agents"
            send_at = "07:00" if i % 3 else ""
            f.write(
                f"reader{i:06d},reader{i:06d}@mail{i % 50}.example.org,{profile},"
                f"{send_at},{ZONES[i % 4]}\r\n"
            )
    path = directory / "digest.toml"
    path.write_text(CONFIG, encoding="utf-8")
    return path


def main() -> None:
    sizes = [int(a) for a in sys.argv[1:]] or [1_000, 10_000, 100_000]
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            path = write(Path(tmp), n)
            wall, cpu = [], []
            for _ in range(5):
                w, c = time.perf_counter(), time.process_time()
                config = load_config(path)
                wall.append(time.perf_counter() - w)
                cpu.append(time.process_time() - c)
            assert len(config.subscribers) == n
            size = (Path(tmp) / "subscribers.csv").stat().st_size / 1e6
            print(
                f"{n:>9,} rows ({size:.1f} MB): wall best {min(wall):.3f} s "
                f"(median {sorted(wall)[2]:.3f}), CPU best {min(cpu):.3f} s "
                f"(median {sorted(cpu)[2]:.3f})"
            )


if __name__ == "__main__":
    main()
