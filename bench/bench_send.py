"""Digests delivered per second to a local aiosmtpd sink, against a raw asyncio client.

    python bench/bench_send.py [--messages 1000] [--connections 4] [--repeats 3]

digest's path is the real one (delivery.outbox.send_all with the email channel), timed
from an empty state file: the digests are stored in the outbox (SQLite, WAL) as pending, a
chunk per transaction, each chunk before its messages are sent, sent over `connections`
persistent aiosmtplib connections, and each is marked sent, with its 30 entries marked
delivered to its subscriber, in the commit after its 250. The ceiling is
../shared/peer-bench's hand-written raw asyncio SMTP client sending the same bytes over the
same number of connections to the same sink, in the same run. Target: >= 60 % of it.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from _data import NOW, digest, peer_bench

peer_bench()
import _common as peers  # noqa: E402  (../shared/peer-bench)
from bench_smtp import flatten, raw_pool  # noqa: E402

from digest.config import load_config  # noqa: E402
from digest.delivery import Parcel, Recipient  # noqa: E402
from digest.delivery.email import EmailChannel  # noqa: E402
from digest.delivery.outbox import Queued, send_all  # noqa: E402
from digest.models import Delivery, Reader  # noqa: E402
from digest.render import render  # noqa: E402
from digest.send import Outgoing, compose, message_id  # noqa: E402
from digest.state import open_store  # noqa: E402

SENDER = "Morning papers <digest@bench.invalid>"


def build(n: int) -> list[tuple[Outgoing, tuple[str, ...]]]:
    """n real digests (30 entries each, ~50 KB on the wire), one per subscriber, with the
    ids of their entries (marked sent to the subscriber in the commit after the 250)."""
    out = []
    for i in range(n):
        d = digest(30, f"subscriber{i}", offset=i)
        r = render(d)
        message = compose(
            sender=SENDER,
            to_name=f"subscriber{i}",
            to_address=f"subscriber{i}@bench.invalid",
            subject=r.subject,
            text=r.text,
            html=r.html,
            msg_id=message_id(d.reader.key, "2026-11-23", SENDER),
            now=NOW,
        )
        ids = tuple(p.entry.id for p in d.picks)
        out.append((Outgoing.of(message, NOW.date(), f"subscriber{i}"), ids))
    return out


def digest_run(
    outgoing: list[tuple[Outgoing, tuple[str, ...]]], port: int, connections: int, work: Path
) -> None:
    config_path = work / "bench.toml"
    config_path.write_text(
        f'[digest]\nstate = "state.sqlite"\n[smtp]\nhost = "127.0.0.1"\nport = {port}\n'
        f'security = "none"\nfrom = "{SENDER}"\nconnections = {connections}\n'
        '[[feeds]]\nname = "x"\nurl = "x.xml"\n'
        '[profiles.p]\nkeywords = { "x" = 1 }\n'
    )
    (work / "state.sqlite").unlink(missing_ok=True)
    config = load_config(config_path)
    with open_store(config.settings.state) as store:
        queue = []
        profile = config.profiles["p"]
        for o, ids in outgoing:
            key = f"subscriber:{o.name}"
            row = Delivery(key, o.local_date, "pending", None, ids, NOW, NOW)
            parcel = Parcel(
                key, o.name, o.local_date, o.raw, 30, envelope=(o.sender, *o.recipients)
            )
            reader = Recipient(Reader(key, o.name, profile, "UTC"))
            queue.append(Queued(reader, parcel, 0, replace(row, message=o.raw)))
        reports = asyncio.run(send_all(EmailChannel(config), store, queue))
    failed = [r for r in reports if r.outcome != "sent"]
    if failed:
        raise SystemExit(f"bench_send: {len(failed)} failed, e.g. {failed[0]}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=1000)
    ap.add_argument("--connections", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    outgoing = build(a.messages)
    blobs = [(o.recipients[0].encode(), flatten_raw(o.raw)) for o, _ in outgoing]
    size = statistics.mean(len(o.raw) for o, _ in outgoing) / 1000
    times: dict[str, list[float]] = {"digest": [], "raw": []}
    with peers.SmtpSink() as sink, tempfile.TemporaryDirectory() as tmp:
        for _ in range(a.repeats):
            for name, fn in (
                ("digest", lambda: digest_run(outgoing, sink.port, a.connections, Path(tmp))),
                ("raw", lambda: asyncio.run(raw_pool(blobs, sink.port, a.connections))),
            ):
                before = sink.stats()["messages"]
                t0 = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t0)
                got = sink.stats()["messages"] - before
                if got != a.messages:
                    raise SystemExit(f"bench_send: {name} delivered {got} of {a.messages}")
    ours = a.messages / statistics.median(times["digest"])
    limit = a.messages / statistics.median(times["raw"])
    print(
        f"{a.messages} digests, {size:.0f} KB each, {a.connections} connections, sink on 127.0.0.1"
    )
    for name, ts in times.items():
        rate = a.messages / statistics.median(ts)
        print(f"  {name:7s} median {statistics.median(ts):.2f} s  {rate:,.0f} msgs/s  runs {ts}")
    print(
        f"RESULT send: {ours:,.0f} digests/s through the outbox, {ours / limit:.0%} of the raw "
        f"client's {limit:,.0f}/s (target 60 %)"
    )


def flatten_raw(raw: bytes) -> bytes:
    """The peer's flatten() takes an EmailMessage; ours is already bytes."""
    from email import message_from_bytes, policy

    return flatten(message_from_bytes(raw, policy=policy.default))  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
