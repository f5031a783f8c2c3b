"""One kazoo Election participant of the bench's handover and failover suites.

It uses kazoo as a Python service would: one KazooClient per process, Election(path, value),
and Election.run(leader_function), which blocks until this process leads and holds the
leadership until the function returns. A resign makes the function return (run() then deletes
the znode), and a new run() rejoins at the back of the queue.

It speaks the bench's candidate protocol (bench/src/candidate-protocol.ts) in JSON lines:
commands on stdin ({"op": "campaign" | "resign" | "close"}), events on stdout ("ready",
"elected", "resigned", "error"). Timestamps are time.monotonic_ns() (CLOCK_MONOTONIC, the
clock of Node's process.hrtime.bigint()) as decimal strings. End of stdin is "close".

Usage: python3 -u kazoo_election.py '<CandidateConfig as JSON>'
"""

import json
import logging
import os
import sys
import threading
import time

from kazoo.client import KazooClient


def now():
    return str(time.monotonic_ns())


_out = threading.Lock()


def emit(event):
    line = json.dumps(event)
    with _out:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def report(error):
    emit({"ev": "error", "message": str(error)})


class Candidate:
    """The participant: at most one run() in progress, in its own thread."""

    def __init__(self, config):
        self.path = "/bench/" + config["election"]
        self.value = config["value"]
        self.ttl_ms = config["ttlMs"]
        # The session timeout requested; at the bench's tickTime (200 ms) ZooKeeper accepts
        # 0.4-4 s unchanged, so it is the one in force (kazoo does not expose the negotiated one).
        self.client = KazooClient(hosts=config["endpoint"], timeout=self.ttl_ms / 1000)
        self.thread = None
        self.resign_now = None
        self.closing = False

    def connect(self):
        self.client.start(timeout=10)
        self.client.exists("/bench/warm-up")

    def campaign(self):
        election = self.client.Election(self.path, self.value)
        resign_now = threading.Event()

        def lead():
            t = now()
            emit({"ev": "elected", "t": t, "ttlMs": self.ttl_ms, "epoch": ""})
            resign_now.wait()

        def run():
            try:
                election.run(lead)
            except Exception as error:  # a lost session; a closed client, when closing
                if not self.closing:
                    report(error)

        self.resign_now = resign_now
        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def resign(self):
        t0 = now()
        self.resign_now.set()
        self.thread.join()  # run() has returned: the znode is deleted
        t1 = now()
        emit({"ev": "resigned", "t0": t0, "t1": t1})
        self.campaign()  # rejoin at the back of the queue

    def close(self):
        # A close that hangs (server gone) must not keep the process.
        threading.Timer(3, lambda: os._exit(0)).start()
        self.closing = True
        try:
            self.client.stop()
            self.client.close()
        finally:
            os._exit(0)


def main():
    if len(sys.argv) != 2:
        print("usage: kazoo_election.py '<CandidateConfig JSON>'", file=sys.stderr)
        sys.exit(2)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    candidate = Candidate(json.loads(sys.argv[1]))
    try:
        candidate.connect()
    except Exception as error:
        report(error)
        sys.exit(1)
    emit({"ev": "ready", "pid": os.getpid()})

    # Commands run one at a time, in order.
    for line in sys.stdin:
        try:
            op = json.loads(line)["op"]
            if op == "campaign":
                candidate.campaign()
            elif op == "resign":
                candidate.resign()
            elif op == "close":
                break
            else:
                report("unknown command " + repr(op))
        except Exception as error:
            report(error)
    candidate.close()  # "close", or end of stdin: the parent went away


if __name__ == "__main__":
    main()
