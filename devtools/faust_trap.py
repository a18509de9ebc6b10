"""SIGKILL a per-key counter again and again, then count what it lost and counted twice.

The drift judge keeps per-key state that must survive a crash without forgetting and
without counting twice (or it would alert again). This reproduction runs the same
counter three ways, each as a separate process that is SIGKILLed at random moments and
restarted while numbered events arrive, and compares the final per-key counts, read from
the state's changelog topic with a plain aiokafka consumer, with what was produced:

- ``faust-at_least_once`` / ``faust-exactly_once``: a faust-streaming agent that counts
  events per key into a changelogged ``Table`` (memory store, recovered from the changelog);
- ``runtime``: the project's own mechanism, a ``GroupConsumer`` in exactly-once mode whose
  counts live in the drift service's ``StateTable`` and are written to a compacted topic in
  the transaction that consumes the events.

It also measures each counter's throughput on pre-produced events without kills.

    .venv/bin/python -m devtools.faust_trap --rounds 3   # MODELBUS_CACHE_DIR as for the tests

services/drift/README.md ("Why the judge's state is not a faust table") has the results.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError

MODES = ("faust-at_least_once", "faust-exactly_once", "runtime")
SESSION_TIMEOUT_S = 6.0
"""The broker's smallest allowed session timeout: a killed member is noticed soonest."""
SETTLE_POLL_S = 1.0
STABLE_POLLS = 4
THROUGHPUT_MARK = "THROUGHPUT"
TRANSACTION_WAIT_S = 90.0
REPO_ROOT = Path(__file__).resolve().parents[1]


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# -- the counters under test (each runs in its own process) ----------------------------------


def run_faust_counter(bootstrap: str, app_id: str, topic: str, partitions: int, mode: str) -> None:
    """A faust worker whose one agent counts events per key into a changelogged table."""
    import faust

    app = faust.App(
        app_id,
        broker=f"kafka://{bootstrap}",
        store="memory://",
        processing_guarantee=mode,
        topic_partitions=partitions,
        web_enabled=False,
        broker_session_timeout=SESSION_TIMEOUT_S,
        broker_heartbeat_interval=1.0,
        consumer_auto_offset_reset="earliest",
    )
    events = app.topic(topic, key_serializer="raw", value_serializer="raw", partitions=partitions)
    key_to_count = app.Table("counts", default=int, partitions=partitions)
    meter = ThroughputMeter(int(os.environ.get("FAUST_TRAP_EXPECT", "0")))

    @app.agent(events)
    async def count_events(stream: Any) -> None:
        async for key, _value in stream.items():
            key_to_count[key.decode()] += 1
            meter.tick()

    worker = faust.Worker(app, loglevel="WARNING", quiet=True)
    worker.execute_from_commandline()


async def run_runtime_counter(
    bootstrap: str, group: str, topic: str, state_topic: str, expect: int
) -> None:
    """The drift judge's mechanism: counts in a StateTable, written in the consuming transaction."""
    from services.drift.adapters.changelog import StateTable
    from shared.runtime.consumer import ConsumerConfig, GroupConsumer

    table = StateTable(
        bootstrap=bootstrap, topic=state_topic, client_options={}, source="faust-trap"
    )
    meter = ThroughputMeter(expect)
    member: GroupConsumer | None = None

    async def count_events(records: list[Any]) -> list[Any]:
        assert member is not None
        table.begin()
        for record in records:
            await table.ensure_restored(record.partition, member.generation)
            key = (record.key.decode(), 1)
            stored = table.get(record.partition, key) or {"count": 0}
            table.put(record.partition, key, {"count": stored["count"] + 1})
            meter.tick()
        return table.pending_records()

    member = GroupConsumer(
        ConsumerConfig(
            bootstrap=bootstrap,
            topics=(topic,),
            group_id=group,
            client_id=f"{group}-member",
            delivery_mode="exactly-once",
            transactional_id=f"{group}-tx",
            session_timeout_ms=int(SESSION_TIMEOUT_S * 1000),
            max_batch_records=1000,
        ),
        count_events,
        on_published=table.commit,
    )
    await member.start()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, member.request_stop)
    try:
        await member.run_until_stopped()
    finally:
        await member.stop()


class ThroughputMeter:
    """Prints events/s once the expected number of events went through (0: never)."""

    def __init__(self, expect: int) -> None:
        self._expect = expect
        self._seen = 0
        self._first = 0.0

    def tick(self) -> None:
        self._seen += 1
        if self._seen == 1:
            self._first = time.perf_counter()
        elif self._seen == self._expect:
            rate = (self._seen - 1) / (time.perf_counter() - self._first)
            print(f"{THROUGHPUT_MARK} {rate:.0f}", flush=True)


# -- the scenario ---------------------------------------------------------------------------


@dataclass
class RoundResult:
    mode: str
    seed: int
    produced: int
    counted: int
    lost: int
    """Events missing from keys whose final count is below what was produced for them."""
    double_counted: int
    """Events counted again on keys whose final count is above what was produced."""
    keys_low: int
    keys_high: int
    kills: int
    finished: bool
    """False when the last, unkilled worker did not settle within the time allowed."""
    seconds: float


@dataclass
class Scenario:
    bootstrap: str
    events: int
    keys: int
    partitions: int
    kills: int
    rate: float
    kill_after: tuple[float, float]
    settle_timeout: float
    work_dir: Path
    results: list[RoundResult] = field(default_factory=list)


@dataclass(frozen=True)
class Topics:
    events: str
    state: str
    group: str


def topics_for(mode: str, tag: str) -> Topics:
    group = f"trap-{mode.replace('_', '-')}-{tag}"
    if mode.startswith("faust"):
        return Topics(events=f"{group}-events", state=f"{group}-counts-changelog", group=group)
    return Topics(events=f"{group}-events", state=f"{group}-state", group=group)


def counter_command(scenario: Scenario, mode: str, topics: Topics) -> list[str]:
    return [
        sys.executable,
        "-m",
        "devtools.faust_trap",
        "--bootstrap",
        scenario.bootstrap,
        "counter",
        "--mode",
        mode,
        "--group",
        topics.group,
        "--topic",
        topics.events,
        "--state-topic",
        topics.state,
        "--partitions",
        str(scenario.partitions),
    ]


async def start_counter(
    scenario: Scenario, mode: str, topics: Topics, log_name: str, expect: int = 0
) -> tuple[asyncio.subprocess.Process, Path]:
    log_path = scenario.work_dir / f"{log_name}.log"
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            *counter_command(scenario, mode, topics),
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
            env=os.environ | {"FAUST_TRAP_EXPECT": str(expect)},
            cwd=REPO_ROOT,
        )
    return process, log_path


async def create_topics(bootstrap: str, mode: str, topics: Topics, partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        new = [NewTopic(topics.events, partitions, 1)]
        if not mode.startswith("faust"):  # faust declares its changelog itself
            new.append(
                NewTopic(topics.state, partitions, 1, topic_configs={"cleanup.policy": "compact"})
            )
        await admin.create_topics(new)
    finally:
        await admin.close()


async def produce(
    bootstrap: str, topic: str, events: int, keys: int, rate: float, seed: int
) -> Counter[str]:
    """Numbered events on random keys, paced at `rate` per second (0: as fast as possible)."""
    rng = random.Random(seed)  # noqa: S311 - a reproducible workload, not a secret
    produced: Counter[str] = Counter()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    started = time.monotonic()
    try:
        chunk = 200
        for first in range(0, events, chunk):
            sends = []
            for number in range(first, min(first + chunk, events)):
                key = f"k{rng.randrange(keys):03d}"
                produced[key] += 1
                value = json.dumps({"n": number}).encode()
                sends.append(await producer.send(topic, value, key=key.encode()))
            await asyncio.gather(*sends)
            if rate > 0:
                ahead = (first + chunk) / rate - (time.monotonic() - started)
                if ahead > 0:
                    await asyncio.sleep(ahead)
    finally:
        await producer.stop()
    return produced


async def read_counts(
    bootstrap: str, mode: str, state_topic: str, partitions: int
) -> dict[str, int]:
    """Latest committed value per key in the state topic, read with no project code."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, isolation_level="read_committed"
    )
    await consumer.start()
    counts: dict[str, int] = {}
    try:
        tps = [TopicPartition(state_topic, p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            fetched = await consumer.getmany(*tps, timeout_ms=500)
            for records in fetched.values():
                for record in records:
                    if record.value is None:
                        continue
                    if mode.startswith("faust"):
                        counts[json.loads(record.key)] = json.loads(record.value)
                    else:
                        model = record.key.decode().rsplit("/", 1)[0]
                        counts[model] = json.loads(record.value)["state"]["count"]
    finally:
        await consumer.stop()
    return counts


async def group_lag(bootstrap: str, group: str, topic: str, partitions: int) -> int | None:
    """Events on `topic` past the group's committed offsets (None: nothing committed yet)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        try:
            committed = await admin.list_consumer_group_offsets(group)
        except KafkaError:  # no coordinator yet on a fresh broker
            return None
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        ends = await consumer.end_offsets(tps)
        mine = {tp: meta.offset for tp, meta in committed.items() if tp.topic == topic}
        if len(mine) < len(tps):
            return None
        return sum(max(0, int(ends[tp]) - int(mine[tp])) for tp in tps)
    finally:
        await consumer.stop()
        await admin.close()


async def transactions_resolved(
    bootstrap: str, topic: str, partitions: int, wait_seconds: float
) -> bool:
    """Wait until no transaction is open on `topic` (the last stable offset is its end).

    A transaction a stopped worker left open is aborted by the broker after its timeout
    (aiokafka's default, 60 s); only then is what the changelog holds final.
    """
    tps = [TopicPartition(topic, p) for p in range(partitions)]
    committed = AIOKafkaConsumer(bootstrap_servers=bootstrap, isolation_level="read_committed")
    uncommitted = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await committed.start()
    await uncommitted.start()
    deadline = time.monotonic() + wait_seconds
    try:
        while time.monotonic() < deadline:
            if await committed.end_offsets(tps) == await uncommitted.end_offsets(tps):
                return True
            await asyncio.sleep(SETTLE_POLL_S)
        return False
    finally:
        await committed.stop()
        await uncommitted.stop()


async def kill_cycle(
    scenario: Scenario, mode: str, topics: Topics, rng: random.Random, tag: str
) -> int:
    kills = 0
    for number in range(scenario.kills):
        process, _ = await start_counter(scenario, mode, topics, f"{tag}-run{number}")
        lifetime = rng.uniform(*scenario.kill_after)
        await asyncio.sleep(lifetime)
        if process.returncode is None:
            process.send_signal(signal.SIGKILL)
            kills += 1
        await process.wait()
        say(f"  {mode}: killed run {number + 1}/{scenario.kills} after {lifetime:.1f} s")
    return kills


async def settle(
    scenario: Scenario, mode: str, topics: Topics, tag: str
) -> tuple[bool, dict[str, int]]:
    """Run one last worker, unkilled, until the group is caught up and the counts stay put.

    Returns whether it settled, and the counts then: with every input offset committed,
    the committed changelog holds the state of every event (both go in one transaction in
    exactly-once mode, and the changelog is flushed before offsets in at-least-once).
    """
    process, log_path = await start_counter(scenario, mode, topics, f"{tag}-final")
    deadline = time.monotonic() + scenario.settle_timeout
    previous: dict[str, int] | None = None
    counts: dict[str, int] = {}
    stable = 0
    try:
        while time.monotonic() < deadline:
            await asyncio.sleep(SETTLE_POLL_S)
            if process.returncode is not None:
                say(f"  {mode}: the final worker exited ({process.returncode}); see {log_path}")
                return False, counts
            lag = await group_lag(
                scenario.bootstrap, topics.group, topics.events, scenario.partitions
            )
            counts = await read_counts(scenario.bootstrap, mode, topics.state, scenario.partitions)
            stable = stable + 1 if lag == 0 and counts == previous else 0
            previous = counts
            if stable >= STABLE_POLLS:
                return True, counts
        say(f"  {mode}: the final worker did not settle; see {log_path}")
        return False, counts
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), timeout=30)
            except TimeoutError:
                process.kill()
                await process.wait()


async def one_round(scenario: Scenario, mode: str, seed: int) -> RoundResult:
    tag = f"{seed}-{uuid.uuid4().hex[:6]}"
    topics = topics_for(mode, tag)
    await create_topics(scenario.bootstrap, mode, topics, scenario.partitions)
    rng = random.Random(seed)  # noqa: S311 - a reproducible workload, not a secret
    started = time.monotonic()
    producing = asyncio.create_task(
        produce(
            scenario.bootstrap,
            topics.events,
            scenario.events,
            scenario.keys,
            scenario.rate,
            seed,
        )
    )
    kills = await kill_cycle(scenario, mode, topics, rng, f"{mode}-{tag}")
    produced = await producing
    finished, at_settle = await settle(scenario, mode, topics, f"{mode}-{tag}")
    if not await transactions_resolved(
        scenario.bootstrap, topics.state, scenario.partitions, TRANSACTION_WAIT_S
    ):
        say(f"  {mode}: a transaction on {topics.state} is still open")
    counts = await read_counts(scenario.bootstrap, mode, topics.state, scenario.partitions)
    if counts != at_settle:
        say(
            f"  {mode}: {sum(at_settle.values())} counted once caught up, {sum(counts.values())} "
            "once every transaction was resolved"
        )
    lost = sum(max(0, n - counts.get(key, 0)) for key, n in produced.items())
    double = sum(max(0, counts.get(key, 0) - produced.get(key, 0)) for key in counts)
    result = RoundResult(
        mode=mode,
        seed=seed,
        produced=sum(produced.values()),
        counted=sum(counts.values()),
        lost=lost,
        double_counted=double,
        keys_low=sum(1 for key, n in produced.items() if counts.get(key, 0) < n),
        keys_high=sum(1 for key in counts if counts[key] > produced.get(key, 0)),
        kills=kills,
        finished=finished,
        seconds=round(time.monotonic() - started, 1),
    )
    say(
        f"  {mode} seed {seed}: produced {result.produced}, counted {result.counted}, "
        f"lost {lost}, double-counted {double}, kills {kills}"
        + ("" if finished else " (did not settle)")
    )
    return result


async def throughput(scenario: Scenario, mode: str, events: int) -> float | None:
    """Events/s of one unkilled counter on pre-produced events (JSON values, 50 keys)."""
    topics = topics_for(mode, f"tp-{uuid.uuid4().hex[:6]}")
    await create_topics(scenario.bootstrap, mode, topics, scenario.partitions)
    await produce(scenario.bootstrap, topics.events, events, scenario.keys, 0, seed=0)
    process, log_path = await start_counter(scenario, mode, topics, topics.group, expect=events)
    deadline = time.monotonic() + scenario.settle_timeout
    rate: float | None = None
    try:
        while time.monotonic() < deadline and process.returncode is None:
            await asyncio.sleep(SETTLE_POLL_S)
            for line in log_path.read_text(errors="replace").splitlines():
                if THROUGHPUT_MARK in line:  # faust's worker logs what its agents print
                    rate = float(line.split(THROUGHPUT_MARK)[1].split()[0])
            if rate is not None:
                return rate
        return None
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), timeout=30)
            except TimeoutError:
                process.kill()
                await process.wait()


def summarise(results: Sequence[RoundResult]) -> list[dict[str, Any]]:
    rows = []
    for mode in dict.fromkeys(r.mode for r in results):
        mine = [r for r in results if r.mode == mode]
        rows.append(
            {
                "mode": mode,
                "rounds": len(mine),
                "produced": sum(r.produced for r in mine),
                "lost": sum(r.lost for r in mine),
                "double_counted": sum(r.double_counted for r in mine),
                "rounds_with_loss": sum(1 for r in mine if r.lost),
                "rounds_with_doubles": sum(1 for r in mine if r.double_counted),
                "kills": sum(r.kills for r in mine),
                "unsettled_rounds": sum(1 for r in mine if not r.finished),
            }
        )
    return rows


def print_table(rows: Sequence[dict[str, Any]]) -> None:
    columns = list(rows[0]) if rows else []
    print("| " + " | ".join(columns) + " |")
    print("| " + " | ".join("---" for _ in columns) + " |")
    for row in rows:
        print("| " + " | ".join(str(row[c]) for c in columns) + " |")


async def run_scenario(
    scenario: Scenario, modes: Sequence[str], rounds: int, seed: int, throughput_events: int
) -> dict[str, Any]:
    rates: dict[str, float | None] = {}
    if throughput_events:
        for mode in modes:
            say(f"throughput: {mode}, {throughput_events} pre-produced events")
            rates[mode] = await throughput(scenario, mode, throughput_events)
            say(f"  {mode}: {rates[mode]} events/s")
    for number in range(rounds):
        for mode in modes:
            say(f"round {number + 1}/{rounds}: {mode}, seed {seed + number}")
            scenario.results.append(await one_round(scenario, mode, seed + number))
    return {"throughput": rates, "summary": summarise(scenario.results)}


# -- command line ---------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.faust_trap",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    parser.add_argument("--bootstrap", help="an existing broker (default: start one)")
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument("--rounds", type=int, default=3, help="rounds per mode (seeds)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--events", type=int, default=20_000, help="events per round")
    parser.add_argument("--keys", type=int, default=50)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--kills", type=int, default=6, help="SIGKILLs per round")
    parser.add_argument("--rate", type=float, default=500.0, help="events/s while killing")
    parser.add_argument(
        "--kill-after",
        type=float,
        nargs=2,
        default=(2.0, 12.0),
        metavar=("MIN", "MAX"),
        help="a worker lives a uniform random number of seconds in [MIN, MAX]",
    )
    parser.add_argument("--settle-timeout", type=float, default=180.0)
    parser.add_argument("--throughput-events", type=int, default=50_000, help="0: skip")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--work-dir", type=Path, help="worker logs (default: a temp dir)")
    sub = parser.add_subparsers(dest="command")
    counter = sub.add_parser("counter", help="(internal) run one counter process")
    counter.add_argument("--mode", choices=MODES, required=True)
    counter.add_argument("--group", required=True)
    counter.add_argument("--topic", required=True)
    counter.add_argument("--state-topic", required=True)
    counter.add_argument("--partitions", type=int, required=True)
    return parser.parse_args(argv)


def run_counter(args: argparse.Namespace) -> None:
    expect = int(os.environ.get("FAUST_TRAP_EXPECT", "0"))
    if args.mode.startswith("faust-"):
        mode = args.mode.removeprefix("faust-")
        run_faust_counter(args.bootstrap, args.group, args.topic, args.partitions, mode)
        return
    asyncio.run(
        run_runtime_counter(args.bootstrap, args.group, args.topic, args.state_topic, expect)
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.command == "counter":
        run_counter(args)
        return 0
    from devtools.kafka_broker import KafkaBroker

    with tempfile.TemporaryDirectory(prefix="faust-trap-") as temp:
        work_dir = args.work_dir or Path(temp) / "logs"
        work_dir.mkdir(parents=True, exist_ok=True)
        broker = None
        bootstrap = args.bootstrap
        if bootstrap is None:
            say("starting a Kafka broker")
            broker = KafkaBroker.start(Path(temp) / "kafka")
            bootstrap = broker.bootstrap
        try:
            scenario = Scenario(
                bootstrap=bootstrap,
                events=args.events,
                keys=args.keys,
                partitions=args.partitions,
                kills=args.kills,
                rate=args.rate,
                kill_after=tuple(args.kill_after),
                settle_timeout=args.settle_timeout,
                work_dir=work_dir,
            )
            report = asyncio.run(
                run_scenario(scenario, args.modes, args.rounds, args.seed, args.throughput_events)
            )
        finally:
            if broker is not None:
                broker.stop()
    report["rounds"] = [asdict(r) for r in scenario.results]
    report["settings"] = {k: str(v) for k, v in vars(args).items() if k != "command"}
    print_table(report["summary"])
    print("throughput (events/s):", json.dumps(report["throughput"]))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        say(f"results written to {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
