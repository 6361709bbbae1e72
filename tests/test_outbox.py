"""The outbox: retries, deferrals, folding, and crashes at every step of a delivery."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import time
from collections import Counter
from contextlib import closing
from datetime import date, timedelta
from pathlib import Path
from xml.sax.saxutils import escape

from conftest import DIGEST, ROOT, RunDigest
from servers import SMTPServer

TOPICS = ("alpha", "bravo", "charlie", "delta", "echo")
ARTIFACTS = ROOT / "test-artifacts"


def write_config(directory: Path, server: SMTPServer, **smtp: object) -> Path:
    settings = {"connections": 2, "attempts": 1, "backoff": 0, **smtp}
    extra = "".join(f"{key} = {value}\n" for key, value in settings.items())
    people = "".join(
        f"[profiles.{t}]\nkeywords = {{ {t} = 1 }}\n"
        f"[[subscribers]]\nname = '{t}'\nemail = '{t}@example.org'\nprofile = '{t}'\n"
        for t in TOPICS
    )
    config = directory / "digest.toml"
    config.write_text(
        f"""
[digest]
title = "Crash test"
state = "state.sqlite"
timezone = "UTC"

[smtp]
host = "{server.host}"
port = {server.port}
security = "none"
from = "digest@example.org"
timeout = 10
{extra}
[[feeds]]
name = "papers"
url = "feed.rss"

{people}
"""
    )
    return config


def write_day(directory: Path, day: int) -> dict[str, set[str]]:
    """Two new papers per topic for this day; returns topic → links."""
    links: dict[str, set[str]] = {t: set() for t in TOPICS}
    items = []
    for topic in TOPICS:
        for j in range(2):
            link = f"https://papers.example/{day}/{topic}/{j}"
            links[topic].add(link)
            items.append(
                f"<item><title>Day {day} paper {j} about {escape(topic)}</title>"
                f"<link>{link}</link><guid>{link}</guid></item>"
            )
    (directory / "feed.rss").write_text(
        f"<rss version='2.0'><channel><title>p</title>{''.join(items)}</channel></rss>"
    )
    return links


def now_of(day: int, hour: int = 6) -> str:
    return f"{date(2026, 1, 1) + timedelta(days=day)}T{hour:02d}:00:00Z"


def received(server: SMTPServer, day: int) -> dict[str, list[set[str]]]:
    """topic → the set of paper links in each message received for that day."""
    stamp = str(date(2026, 1, 1) + timedelta(days=day))
    found: dict[str, list[set[str]]] = {t: [] for t in TOPICS}
    for m in server.messages:
        if stamp in str(m.message["Subject"]):
            topic = m.rcpt_tos[0].split("@")[0]
            found[topic].append(set(re.findall(r"https://papers\.example/\S+?/\d", m.raw.decode())))
    return found


def statuses(directory: Path) -> Counter[str]:
    with closing(sqlite3.connect(directory / "state.sqlite")) as db:
        return Counter(row[0] for row in db.execute("SELECT status FROM deliveries"))


def test_a_deferral_is_retried_in_the_run_then_resent_unchanged_the_same_day(
    tmp_path: Path, smtp_plain_server: SMTPServer, run_digest: RunDigest
) -> None:
    config = write_config(tmp_path, smtp_plain_server, attempts=3, backoff=0.05)
    write_day(tmp_path, 0)
    smtp_plain_server.data_reply = "451 4.3.0 Try again later"
    first = run_digest("run", "--config", str(config), "--now", now_of(0))
    assert first.returncode == 1 and "451" in first.stderr
    assert smtp_plain_server.data_count == 3 * len(TOPICS), "each message tried 3 times"
    assert statuses(tmp_path) == Counter({"pending": len(TOPICS)})

    smtp_plain_server.data_reply = None
    second = run_digest("run", "--config", str(config), "--now", now_of(0, 9))
    assert second.returncode == 0, second.stderr
    assert statuses(tmp_path) == Counter({"sent": len(TOPICS)})
    ids = Counter(str(m.message["Message-ID"]) for m in smtp_plain_server.messages)
    assert len(ids) == len(TOPICS) and set(ids.values()) == {1}
    # the resent message is the one built first: its Date is the first run's
    assert all("06:00:00" in str(m.message["Date"]) for m in smtp_plain_server.messages)


def test_a_permanent_refusal_is_not_retried(
    tmp_path: Path, smtp_plain_server: SMTPServer, run_digest: RunDigest
) -> None:
    config = write_config(tmp_path, smtp_plain_server, attempts=3, backoff=0.05)
    write_day(tmp_path, 0)
    smtp_plain_server.data_reply = "554 5.6.0 Message rejected"
    result = run_digest("run", "--config", str(config), "--now", now_of(0))
    assert result.returncode == 1 and "554 5.6.0 Message rejected" in result.stderr
    assert smtp_plain_server.data_count == len(TOPICS), "a 5xx was retried"
    assert statuses(tmp_path) == Counter({"failed": len(TOPICS)})


def test_an_undelivered_digest_is_folded_into_the_next_days(
    tmp_path: Path, smtp_plain_server: SMTPServer, run_digest: RunDigest
) -> None:
    config = write_config(tmp_path, smtp_plain_server)
    day0 = write_day(tmp_path, 0)
    smtp_plain_server.data_reply = "451 4.3.0 Try again later"
    assert run_digest("run", "--config", str(config), "--now", now_of(0)).returncode == 1
    smtp_plain_server.data_reply = None
    day1 = write_day(tmp_path, 1)
    result = run_digest("run", "--config", str(config), "--now", now_of(1))
    assert result.returncode == 0, result.stderr
    got = received(smtp_plain_server, 1)
    for topic in TOPICS:
        assert got[topic] == [day0[topic] | day1[topic]]
    assert statuses(tmp_path) == Counter({"folded": len(TOPICS), "sent": len(TOPICS)})


STEPS = ("before-send", "during-data", "after-250", "after-commit")


def test_crashes_at_every_step_lose_nothing_and_duplicate_only_in_the_window(
    tmp_path: Path, smtp_plain_server: SMTPServer
) -> None:
    """Kill `digest run` with SIGKILL at a random step, then run it again the same day.

    One connection, so "the window" is exactly one message: with k connections a crash can
    also catch up to k-1 other messages between their 250 and their commit.
    """
    trials = int(os.environ.get("DIGEST_CRASH_TRIALS", "200"))
    seed = int(os.environ.get("DIGEST_CRASH_SEED", "20261123"))
    rng = random.Random(seed)
    config = write_config(tmp_path, smtp_plain_server, connections=1)
    server = smtp_plain_server
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    tally: Counter[str] = Counter()
    problems: list[str] = []
    for day in range(trials):
        expected = write_day(tmp_path, day)
        step, nth = rng.choice(STEPS), rng.randint(1, len(TOPICS))
        fault_env = dict(env)
        if step != "during-data":
            fault_env["DIGEST_FAULT"] = f"{step}:{nth}"
        start = server.data_count
        process = subprocess.Popen(
            [str(DIGEST), "run", "--config", str(config), "--now", now_of(day)],
            env=fault_env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if step == "during-data":

            def kill_during_data(
                count: int, pid: int = process.pid, at: int = start + nth
            ) -> str | None:
                if count != at:
                    return None
                os.kill(pid, signal.SIGKILL)
                return "451 4.4.2 Connection dropped"  # never read: the client is gone

            server.on_data = kill_during_data
        killed = process.wait(timeout=60) == -signal.SIGKILL
        server.on_data = None
        tally["killed" if killed else "not killed"] += 1
        tally[f"killed {step}"] += killed
        again = subprocess.run(
            [str(DIGEST), "run", "--config", str(config), "--now", now_of(day, 9)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if again.returncode != 0:
            problems.append(f"day {day}: re-run failed: {again.stderr.strip()}")
        window = 1 if killed and step == "after-250" else 0
        doubled = 0
        for topic, messages in received(server, day).items():
            if not messages:
                tally["lost digests"] += 1
                problems.append(f"day {day} ({step}:{nth}): {topic} got nothing")
            elif any(links != expected[topic] for links in messages):
                tally["lost entries"] += 1
                problems.append(f"day {day}: {topic} got {messages}, wanted {expected[topic]}")
            doubled += len(messages) - 1
        tally["duplicates in the window"] += min(doubled, window)
        tally["duplicates outside the window"] += max(doubled - window, 0)
        if doubled > window:
            problems.append(f"day {day} ({step}:{nth}): {doubled} duplicate(s)")
    ARTIFACTS.mkdir(exist_ok=True)
    summary = {"trials": trials, "seed": seed, **tally}
    (ARTIFACTS / "outbox-crash-test.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(f"\noutbox crash test: {summary}")
    assert not problems, "\n".join(problems[:20])
    assert tally["killed"] >= trials * 0.9, f"too few kills happened: {summary}"
    for step in STEPS:
        assert tally[f"killed {step}"] > 0, f"no kill at {step}: {summary}"


def test_kills_during_a_morning_of_5000_subscribers_lose_nothing(
    tmp_path: Path, smtp_plain_server: SMTPServer
) -> None:
    """A batched run of 5,000 subscribers (batches of 1,000, 4 connections) killed with SIGKILL
    at random moments, then run again until it finishes: every subscriber has exactly one
    digest but for at most one per open connection at each kill (the 250 → commit window)."""
    subscribers = int(os.environ.get("DIGEST_BIG_MORNING", "5000"))
    kills = int(os.environ.get("DIGEST_BIG_MORNING_KILLS", "5"))
    rng = random.Random(int(os.environ.get("DIGEST_CRASH_SEED", "20261123")))
    connections = 4
    config = write_config(tmp_path, smtp_plain_server, connections=connections)
    people = "".join(
        f"[[subscribers]]\nname = 's{i}'\nemail = 's{i}@example.org'\n"
        f"profile = '{TOPICS[i % len(TOPICS)]}'\n"
        for i in range(subscribers)
    )
    text = config.read_text()
    config.write_text(text[: text.index("[profiles.")] + "".join(
        f"[profiles.{t}]\nkeywords = {{ {t} = 1 }}\n" for t in TOPICS
    ) + people)  # fmt: skip
    write_day(tmp_path, 0)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    server = smtp_plain_server
    tally: Counter[str] = Counter()
    for _ in range(kills):
        before = len(server.messages)
        process = subprocess.Popen(
            [str(DIGEST), "run", "--config", str(config), "--now", now_of(0)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        # a random moment once sending has begun (start-up, collect and the first batch
        # take a few seconds), up to a few seconds into it
        deadline = time.monotonic() + 120
        while len(server.messages) == before and process.poll() is None:
            assert time.monotonic() < deadline, "the run sent nothing in two minutes"
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 3.0))
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            tally["killed"] += 1
        process.wait(timeout=60)
        tally["sent before the kill"] += len(server.messages) - before
    final = subprocess.run(
        [str(DIGEST), "run", "--config", str(config), "--now", now_of(0, 9)],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert final.returncode == 0, final.stderr[-2000:]
    counts = Counter(m.rcpt_tos[0] for m in server.messages)
    lost = [f"s{i}" for i in range(subscribers) if counts[f"s{i}@example.org"] == 0]
    duplicates = sum(n - 1 for n in counts.values() if n > 1)
    summary = {"subscribers": subscribers, "connections": connections,
               "messages": len(server.messages), "lost": len(lost),
               "duplicates": duplicates, **tally}  # fmt: skip
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "outbox-big-morning.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(f"\nbig morning: {summary}")
    assert not lost, f"{len(lost)} subscribers got nothing, e.g. {lost[:5]}"
    assert duplicates <= tally["killed"] * connections, summary
    assert tally["killed"] >= 1, f"no kill landed: {summary}"
    assert statuses(tmp_path)["sent"] == subscribers
