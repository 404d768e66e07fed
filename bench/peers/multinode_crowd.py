#!/usr/bin/env python3
"""A small scripted crowd for bench/multinode.sh: people spread over several gateway nodes.

  multinode_crowd.py wait  --ports P1,P2 --room R --people N --interval S --duration D
      N people join (GET /<room>, round robin over the nodes, 5 ms apart, retrying a join
      told to come back later), then each polls its status every S seconds,
      each poll on the next node, for D seconds. Prints "joined N polls P waiting W other O".
  multinode_crowd.py admit --ports P1,P2 --room R --people N --duration D
      N people join, poll every 0.5 s until called (the status hands out the pass), then give
      the slot back (POST .../release). Prints "joined N admitted A released L polls P".
  multinode_crowd.py joins --port P --room R --count N --duration D
      Up to N joins one after another on one keep-alive connection (GET /<room>, JSON), with
      --pause seconds between them: prints "joins N waiting W p50_ms X p99_ms Y" (latency of
      the joins that got a waiting ticket; the others were told to retry later).

Every loop is bounded by --duration. Plain threads and http.client: a few hundred requests a
second is all this is for; wrk measures the throughput.
"""
import argparse
import http.client
import json
import sys
import threading
import time


def connect(port):
    return http.client.HTTPConnection("127.0.0.1", port, timeout=5)


def request(conns, port, method, path, headers):
    """One request on the keep-alive connection to port (reopened once after an error)."""
    for attempt in (0, 1):
        c = conns.get(port) or connect(port)
        conns[port] = c
        try:
            c.request(method, path, headers=headers)
            r = c.getresponse()
            body = r.read()
            return r.status, r.getheader("Set-Cookie") or "", body
        except (OSError, http.client.HTTPException):
            c.close()
            conns.pop(port, None)
            if attempt:
                return 0, "", b""
    return 0, "", b""


def cookie_value(set_cookie_headers, name):
    # http.client joins repeated Set-Cookie headers with ", ".
    for part in set_cookie_headers.replace(", ", ";").split(";"):
        part = part.strip()
        if part.startswith(name + "="):
            return part[len(name) + 1:]
    return None


def join(conns, port, room):
    st, sc, body = request(conns, port, "GET", "/" + room, {"Accept": "application/json"})
    return st, cookie_value(sc, "fg_ticket_" + room), body


def join_all(ports, room, people, end):
    """people joins, round robin over the nodes, 5 ms apart; a join told to come back later
    (503 without a ticket: the node's reserved seq range ran out) is retried 100 ms later.
    Returns (tickets, retries)."""
    conns = {}
    tickets = []
    retries = 0
    for i in range(people):
        while time.monotonic() < end:
            _, t, _ = join(conns, ports[i % len(ports)], room)
            if t:
                tickets.append(t)
                break
            retries += 1
            time.sleep(0.1)
        time.sleep(0.005)
    return tickets, retries


def run_threads(target, people, threads):
    groups = [people[i::threads] for i in range(threads)]
    ts = [threading.Thread(target=target, args=(g,)) for g in groups if g]
    for t in ts:
        t.start()
    for t in ts:
        t.join()


def cmd_wait(a):
    ports = [int(p) for p in a.ports.split(",")]
    tickets, retries = join_all(ports, a.room, a.people, time.monotonic() + a.duration)
    counts = {"polls": 0, "waiting": 0, "other": 0}
    lock = threading.Lock()
    start = time.monotonic()
    end = start + a.duration

    def worker(group):
        my = {}
        polls = waiting = other = 0
        # person k of the group polls at start + k * interval / len(group) + n * interval
        n = 0
        while True:
            for k, (idx, t) in enumerate(group):
                due = start + (n + k / len(group)) * a.interval
                now = time.monotonic()
                if due >= end:
                    break
                if due > now:
                    time.sleep(due - now)
                port = ports[(idx + n + 1) % len(ports)]
                st, _, body = request(my, port, "GET", "/__fg/v1/rooms/%s/status" % a.room,
                                      {"Cookie": "fg_ticket_%s=%s" % (a.room, t)})
                polls += 1
                try:
                    state = json.loads(body).get("state") if st == 200 else None
                except ValueError:
                    state = None
                if state == "waiting":
                    waiting += 1
                else:
                    other += 1
            else:
                n += 1
                continue
            break
        with lock:
            counts["polls"] += polls
            counts["waiting"] += waiting
            counts["other"] += other

    run_threads(worker, list(enumerate(tickets)), a.threads)
    print("joined %d join_retries %d polls %d waiting %d other %d" % (
        len(tickets), retries, counts["polls"], counts["waiting"], counts["other"]))


def cmd_admit(a):
    ports = [int(p) for p in a.ports.split(",")]
    end = time.monotonic() + a.duration
    tickets, retries = join_all(ports, a.room, a.people, end)
    counts = {"admitted": 0, "released": 0, "polls": 0}
    lock = threading.Lock()

    def worker(group):
        my = {}
        todo = dict(group)
        n = 0
        while todo and time.monotonic() < end:
            for idx in list(todo):
                port = ports[(idx + n + 1) % len(ports)]
                st, sc, body = request(my, port, "GET", "/__fg/v1/rooms/%s/status" % a.room,
                                       {"Cookie": "fg_ticket_%s=%s" % (a.room, todo[idx])})
                with lock:
                    counts["polls"] += 1
                pass_ = cookie_value(sc, "fg_pass_" + a.room)
                if st == 200 and pass_:
                    del todo[idx]
                    st, _, body = request(my, ports[(idx + n) % len(ports)], "POST",
                                          "/__fg/v1/rooms/%s/release" % a.room,
                                          {"Cookie": "fg_pass_%s=%s" % (a.room, pass_), "Content-Length": "0"})
                    with lock:
                        counts["admitted"] += 1
                        counts["released"] += 1 if b'"released":true' in body else 0
            n += 1
            time.sleep(0.5)

    run_threads(worker, list(enumerate(tickets)), a.threads)
    print("joined %d join_retries %d admitted %d released %d polls %d" % (
        len(tickets), retries, counts["admitted"], counts["released"], counts["polls"]))


def cmd_joins(a):
    conns = {}
    end = time.monotonic() + a.duration
    lat = []
    waiting = tried = 0
    for _ in range(a.count):
        if time.monotonic() > end:
            break
        t0 = time.perf_counter()
        st, t, body = join(conns, a.port, a.room)
        ms = (time.perf_counter() - t0) * 1000
        tried += 1
        if st == 503 and t and b'"waiting"' in body:
            waiting += 1
            lat.append(ms)
        if a.pause:
            time.sleep(a.pause)
    lat.sort()

    def pct(p):
        return lat[min(len(lat) - 1, int(p / 100 * len(lat)))] if lat else 0.0

    print("joins %d waiting %d p50_ms %.3f p99_ms %.3f" % (tried, waiting, pct(50), pct(99)))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("wait")
    w.add_argument("--interval", type=float, default=1.0)
    ad = sub.add_parser("admit")
    for s in (w, ad):
        s.add_argument("--ports", required=True)
        s.add_argument("--people", type=int, default=100)
        s.add_argument("--threads", type=int, default=4)
    j = sub.add_parser("joins")
    j.add_argument("--port", type=int, required=True)
    j.add_argument("--count", type=int, default=1000)
    j.add_argument("--pause", type=float, default=0.0)
    for s in (w, ad, j):
        s.add_argument("--room", required=True)
        s.add_argument("--duration", type=float, default=10.0)
    a = p.parse_args()
    {"wait": cmd_wait, "admit": cmd_admit, "joins": cmd_joins}[a.cmd](a)
    return 0


if __name__ == "__main__":
    sys.exit(main())
