#!/usr/bin/env python3
"""Reproduces the broker outage that breaks an idempotent producer on tansu with sqlite storage.

An idempotent producer (librdkafka, `message.timeout.ms` 2000) sends while the broker is stopped for
4 s, so the records in flight time out; librdkafka then bumps the producer epoch (InitProducerId with
its existing producer id and epoch). The script then produces N records and counts how many the broker
acknowledged, and whether the broker process is still serving.

    python3 deploy/tansu/repro-outage.py [--tansu BIN] [--mode stop|kill] [--count N]

BIN defaults to `deploy/services.sh tansu-bin`. Exit status 0 when every record after the outage was
acknowledged, 1 otherwise. Needs `confluent-kafka` (pip).
"""
import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

from confluent_kafka import KafkaError, Producer
from confluent_kafka.admin import AdminClient, NewTopic

HERE = os.path.dirname(os.path.abspath(__file__))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, within):
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"tansu did not listen on {port} within {within}s")


def start(binary, workdir, port):
    log = open(os.path.join(workdir, "tansu.log"), "ab")
    proc = subprocess.Popen(
        [binary, "broker",
         "--kafka-listener-url", f"tcp://127.0.0.1:{port}",
         "--kafka-advertised-listener-url", f"tcp://127.0.0.1:{port}",
         "--storage-engine", "sqlite://tansu.db"],
        cwd=workdir, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    wait_port(port, 30)
    return proc


def produce_and_count(producer, topic, n, label, within=20):
    results = {"ok": 0, "err": {}}

    def report(err, _msg):
        if err is None:
            results["ok"] += 1
        else:
            key = err.name()
            results["err"][key] = results["err"].get(key, 0) + 1

    for i in range(n):
        producer.produce(topic, key=f"{label}-{i}", value=f"{label} {i}", on_delivery=report)
        producer.poll(0)
    deadline = time.monotonic() + within
    while producer.flush(0.5) > 0 and time.monotonic() < deadline:
        pass
    print(f"{label}: {results['ok']} of {n} acknowledged, errors {results['err'] or 'none'}", flush=True)
    return results["ok"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tansu")
    ap.add_argument("--mode", choices=["stop", "kill"], default="stop",
                    help="SIGSTOP/SIGCONT the broker, or SIGKILL it and start it again on the same port and file")
    ap.add_argument("--count", type=int, default=100)
    ap.add_argument("--outage", type=float, default=4.0)
    args = ap.parse_args()
    binary = args.tansu or subprocess.check_output(
        ["bash", os.path.join(HERE, "..", "services.sh"), "tansu-bin"], text=True).strip()
    print(f"broker: {binary} (sqlite storage), outage: {args.mode} {args.outage}s", flush=True)

    workdir = tempfile.mkdtemp(prefix="tansu-repro-")
    port = free_port()
    proc = start(binary, workdir, port)
    bootstrap = f"127.0.0.1:{port}"
    topic = "repro"
    try:
        admin = AdminClient({"bootstrap.servers": bootstrap})
        for _, fut in admin.create_topics([NewTopic(topic, 1, 1)]).items():
            fut.result(15)
        producer = Producer({
            "bootstrap.servers": bootstrap,
            "enable.idempotence": True,
            "acks": "all",
            "message.timeout.ms": 2000,
            "reconnect.backoff.ms": 50,
            "reconnect.backoff.max.ms": 1000,
            "linger.ms": 5,
        })
        if produce_and_count(producer, topic, 10, "before") != 10:
            print("FAIL: the broker did not work before the outage")
            return 1

        if args.mode == "stop":
            os.kill(proc.pid, signal.SIGSTOP)
        else:
            proc.kill()
            proc.wait()
        # records sent while the broker is away time out after 2 s
        lost = {"n": 0}
        end = time.monotonic() + args.outage
        i = 0
        while time.monotonic() < end:
            producer.produce(topic, key=f"during-{i}", value=f"during {i}",
                             on_delivery=lambda err, _m: err and lost.__setitem__("n", lost["n"] + 1))
            producer.poll(0.1)
            i += 1
        if args.mode == "stop":
            os.kill(proc.pid, signal.SIGCONT)
        else:
            proc = start(binary, workdir, port)
        producer.flush(5)
        print(f"during the outage: {i} sent, {lost['n']} failed (timed out)", flush=True)

        ok = produce_and_count(producer, topic, args.count, "after")
        alive = proc.poll() is None
        print(f"broker process alive: {alive}")
        fresh = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True,
                          "acks": "all", "message.timeout.ms": 5000})
        fresh_ok = produce_and_count(fresh, topic, 10, "a fresh producer")
        with open(os.path.join(workdir, "tansu.log"), "rb") as f:
            panics = [l.decode(errors="replace").strip() for l in f if b"panicked" in l]
        for line in panics[:3]:
            print(f"broker log: {line[:300]}")
        if ok == args.count and fresh_ok == 10:
            print("PASS: the broker recovered from the outage")
            return 0
        print("FAIL: the broker did not recover from the outage")
        return 1
    finally:
        try:
            os.kill(proc.pid, signal.SIGCONT)
        except OSError:
            pass
        proc.kill()
        proc.wait()


if __name__ == "__main__":
    sys.exit(main())
