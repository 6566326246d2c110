"""The physical floor for pipeline latency: a bare pyzmq + msgpack chain of four processes.

It has the shape of our pipeline without any of our code: a source publishes a bar-sized message
(PUB), a "strategy" process receives it and pushes it on (SUB -> PUSH), a "risk" process pulls and
pushes (PULL -> PUSH), and an "executor" process pulls it and sends it back to the source as a request
(PULL -> DEALER -> ROUTER). Every hop decodes and re-encodes with msgpack, as ours do. The source
measures the time from publishing to receiving the request: the same span the pipeline benchmark
measures from a closed bar to order_send reaching the gateway.

    .venv/bin/python bench/bare_chain.py [--messages 1200] [--rate 200] [--transport ipc|tcp]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import tempfile
import time
from dataclasses import dataclass

import msgpack
import zmq

# A message the size of an encoded Bar (about 175 bytes of msgpack).
PAYLOAD = {
    "v": 1, "id": "0" * 32, "ts": 1752080460.0, "type": "bar", "symbol": "XAUUSDm", "timeframe": "M1",
    "time": 1752080400, "open": 3311.906, "high": 3312.043, "low": 3311.305, "close": 3311.305,
    "tick_volume": 12, "spread": 200,
}


@dataclass(frozen=True)
class Endpoints:
    bars: str
    to_risk: str
    to_executor: str
    requests: str

    @staticmethod
    def make(transport: str, directory: str) -> Endpoints:
        if transport == "ipc":
            return Endpoints(*(f"ipc://{directory}/{name}" for name in ("bars", "risk", "executor", "requests")))
        return Endpoints(*(f"tcp://127.0.0.1:{port}" for port in (47101, 47102, 47103, 47104)))


def _hop(receive_from: str, send_to: str, subscribe: bool) -> None:
    """Forward every message (decode, re-encode) until the stop message has passed through."""
    ctx = zmq.Context()
    inbox = ctx.socket(zmq.SUB if subscribe else zmq.PULL)
    if subscribe:
        inbox.setsockopt(zmq.SUBSCRIBE, b"")
        inbox.connect(receive_from)
    else:
        inbox.bind(receive_from)
    outbox = ctx.socket(zmq.PUSH)
    outbox.connect(send_to)
    while True:
        message = msgpack.unpackb(inbox.recv_multipart()[-1])
        outbox.send(msgpack.packb(message))
        if message.get("stop"):
            break
    ctx.destroy(linger=1000)


def _executor(receive_from: str, request_to: str) -> None:
    ctx = zmq.Context()
    inbox = ctx.socket(zmq.PULL)
    inbox.bind(receive_from)
    dealer = ctx.socket(zmq.DEALER)
    dealer.setsockopt(zmq.ROUTING_ID, b"executor")
    dealer.connect(request_to)
    while True:
        message = msgpack.unpackb(inbox.recv())
        dealer.send(msgpack.packb(message))
        if message.get("stop"):
            break
    ctx.destroy(linger=1000)


def _publish(publisher: zmq.Socket[bytes], **fields: object) -> None:
    message = dict(PAYLOAD, ts=time.perf_counter(), **fields)
    publisher.send_multipart([b"bar.XAUUSDm.M1", msgpack.packb(message)])


def run(messages: int, rate: float, transport: str) -> list[float]:
    """Latencies in milliseconds, source publish -> request back at the source's ROUTER."""
    with tempfile.TemporaryDirectory() as directory:
        endpoints = Endpoints.make(transport, directory)
        ctx = zmq.Context()
        publisher = ctx.socket(zmq.PUB)
        publisher.bind(endpoints.bars)
        router = ctx.socket(zmq.ROUTER)
        router.bind(endpoints.requests)
        workers = [
            multiprocessing.Process(target=_executor, args=(endpoints.to_executor, endpoints.requests)),
            multiprocessing.Process(target=_hop, args=(endpoints.to_risk, endpoints.to_executor, False)),
            multiprocessing.Process(target=_hop, args=(endpoints.bars, endpoints.to_risk, True)),
        ]
        for worker in workers:
            worker.start()
        # Slow joiner: probe until one probe has gone all the way round, then let the rest drain.
        while True:
            _publish(publisher, probe=True)
            if router.poll(100):
                break
        while router.poll(300):
            router.recv_multipart()
        latencies: list[float] = []
        interval = 1.0 / rate
        next_send = time.perf_counter()
        sent = 0
        while len(latencies) < messages:
            if sent < messages and time.perf_counter() >= next_send:
                _publish(publisher, id=f"{sent:032d}")
                sent += 1
                next_send += interval
            wait_ms = max(0, int((next_send - time.perf_counter()) * 1000)) if sent < messages else 2000
            if router.poll(wait_ms):
                frame = router.recv_multipart()[1]
                received_at = time.perf_counter()
                latencies.append((received_at - msgpack.unpackb(frame)["ts"]) * 1000)
            elif sent >= messages:
                raise RuntimeError(f"only {len(latencies)} of {messages} messages came back")
        _publish(publisher, stop=True)
        for worker in workers:
            worker.join(timeout=10)
        ctx.destroy(linger=0)
    return latencies


def describe(latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)
    return {
        "n": len(ordered),
        "p50_ms": statistics.median(ordered),
        "p99_ms": ordered[int(len(ordered) * 0.99) - 1],
        "max_ms": ordered[-1],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=1200)
    parser.add_argument("--rate", type=float, default=200.0, help="messages per second")
    parser.add_argument("--transport", choices=("ipc", "tcp"), default="ipc")
    args = parser.parse_args()
    figures = describe(run(args.messages, args.rate, args.transport))
    print(f"bare 4-process chain ({args.transport}, {args.rate:.0f} msg/s, pid {os.getpid()}): "
          f"n={figures['n']:.0f} p50={figures['p50_ms']:.3f} ms p99={figures['p99_ms']:.3f} ms "
          f"max={figures['max_ms']:.3f} ms")


if __name__ == "__main__":
    main()
