#!/usr/bin/env python3
"""Where an etcd handover's time goes, at the wire.

Runs the handover suite (the bench's arguments after `--`) with tcpdump on loopback and `ss`
noting which process owns which connection, then splits each etcd handover of the JSON
(`splits[].at`: the CLOCK_MONOTONIC times the candidates recorded, and their pids) with the
packets: resign() called -> the delete request's call -> the delete's bytes leave the resigner ->
etcd's watch event bytes leave for the next candidate -> the event in its code -> `elected`.
Prints p50 / p90 / p99 of each step per library, the steps of the slowest handovers, and what
each library's candidates send etcd between handovers (new HTTP/2 streams, i.e. gRPC calls, and
frames per candidate per second: renewals, checks, pings), which a handover can run into.
Needs root and tcpdump
(`apt-get install -y tcpdump`). Packet times are CLOCK_REALTIME; the offset to CLOCK_MONOTONIC
is read before the run.

    python3 bench/scripts/handover-wire.py OUTDIR -- --backends tenure-etcd,go-election --handovers 100
    python3 bench/scripts/handover-wire.py OUTDIR            # analyse OUTDIR again
"""
import bisect
import glob
import json
import os
import re
import struct
import subprocess
import sys
import time


def record(out, bench_args):
    os.makedirs(out, exist_ok=True)
    offset = time.clock_gettime_ns(time.CLOCK_REALTIME) - time.clock_gettime_ns(time.CLOCK_MONOTONIC)
    with open(os.path.join(out, 'offset'), 'w') as f:
        f.write(str(offset))
    dump = subprocess.Popen(['tcpdump', '-i', 'lo', '-w', os.path.join(out, 'cap.pcap'),
                             '--time-stamp-precision=nano', '-s', '0', '-B', '65536', 'tcp'],
                            stderr=subprocess.DEVNULL)
    time.sleep(1)
    bench = subprocess.Popen(['node', 'bench/dist/main.js', '--only', 'handover', '--out', out,
                              *bench_args], stdout=open(os.path.join(out, 'bench.log'), 'w'),
                             stderr=subprocess.STDOUT)
    with open(os.path.join(out, 'ss.txt'), 'w') as ss:
        while bench.poll() is None:
            ss.write(subprocess.run(['ss', '-tnpH', 'state', 'established'],
                                    capture_output=True, text=True).stdout)
            time.sleep(1)
    dump.terminate()
    dump.wait()


def packets(out, port):
    """(monotonic ns, source port, destination port, payload) of the etcd connections."""
    offset = int(open(os.path.join(out, 'offset')).read())
    found = []
    with open(os.path.join(out, 'cap.pcap'), 'rb') as f:
        header = f.read(24)
        nano = struct.unpack('<I', header[:4])[0] == 0xa1b23c4d
        link = struct.unpack('<I', header[20:24])[0]
        while True:
            record_header = f.read(16)
            if len(record_header) < 16:
                break
            seconds, fraction, length, _ = struct.unpack('<IIII', record_header)
            data = f.read(length)
            ip = data[14:] if link == 1 else data[4:]
            if ip[0] >> 4 != 4 or ip[9] != 6:
                continue
            tcp = ip[(ip[0] & 15) * 4:]
            source, destination = struct.unpack('>HH', tcp[:4])
            payload = tcp[(tcp[12] >> 4) * 4:]
            if port in (source, destination) and payload:
                ns = seconds * 10**9 + (fraction if nano else fraction * 1000)
                found.append((ns - offset, source, destination, payload))
    return found


def analyse(out):
    port = int(re.search(r'etcd at http://127\.0\.0\.1:(\d+)',
                         open(os.path.join(out, 'bench.log')).read()).group(1))
    owner = {}
    for line in open(os.path.join(out, 'ss.txt')):
        m = re.match(r'\S+\s+\S+\s+\S+:(\d+)\s+\S+:(\d+)\s+users:\(\("[^"]+",pid=(\d+)', line.strip())
        if m and int(m.group(2)) == port:
            owner[int(m.group(1))] = int(m.group(3))
    found = packets(out, port)
    times = [p[0] for p in found]
    report = json.load(open(sorted(glob.glob(os.path.join(out, '*latest.json')))[0]))
    for backend in report['suites'][0]['data']['backends']:
        steps = {k: [] for k in ['resign() -> delete call', 'delete call -> bytes out',
                                 'bytes out -> event bytes out (etcd)',
                                 'event bytes in -> event in code', 'event -> elected', 'total']}
        for split in backend['splits']:
            at = split.get('at')
            if not at:
                continue
            t0, sent, event, elected = (int(at[k]) for k in ['t0', 'sent', 'event', 'elected'])
            request = reply = None
            for t, source, destination, payload in found[bisect.bisect_left(times, t0):]:
                if t > elected:
                    break
                if (request is None and destination == port and t >= sent - 50_000
                        and owner.get(source) == at['resigner'] and b'bench-handover' in payload):
                    request = t
                elif (request is not None and source == port and owner.get(destination) == at['next']
                      and b'bench-handover' in payload):
                    reply = t
                    break
            if request is None or reply is None:
                continue
            for name, ms in zip(steps, [sent - t0, request - sent, reply - request, event - reply,
                                        elected - event, elected - t0]):
                steps[name].append(ms / 1e6)
        print(f"{backend['backend']} ({len(steps['total'])} handovers matched)")
        for name, values in steps.items():
            if not values:
                continue
            ordered = sorted(values)
            q = lambda p: ordered[min(len(ordered) - 1, round(p * (len(ordered) - 1)))]
            print(f'  {name:38s} p50 {q(.5):6.2f}  p90 {q(.9):6.2f}  p99 {q(.99):6.2f} ms')
        slowest = sorted(zip(*steps.values()), key=lambda row: -row[-1])[:5]
        if slowest:
            print('  slowest (ms): ' + ' | '.join(name.split(' -> ')[-1] for name in steps))
            for row in slowest:
                print('    ' + '  '.join(f'{ms:6.2f}' for ms in row))
        background(backend, found, owner, port)


def background(backend, found, owner, port):
    """Frames the library's candidates send etcd outside the handovers (1 ms before each resign to
    5 ms after its `elected`), per candidate per second: new streams (gRPC calls) and all frames."""
    windows = sorted((int(s['at']['t0']) - 1_000_000, int(s['at']['elected']) + 5_000_000)
                     for s in backend['splits'] if s.get('at'))
    pids = {s['at'][k] for s in backend['splits'] if s.get('at') for k in ('resigner', 'next')}
    if not windows or not pids:
        return
    starts = [w[0] for w in windows]
    streams = frames = 0
    for t, source, destination, payload in found:
        if destination != port or owner.get(source) not in pids:
            continue
        if t < windows[0][0] or t > windows[-1][1]:
            continue
        i = bisect.bisect_right(starts, t) - 1
        if i >= 0 and t <= windows[i][1]:
            continue
        at = 0
        while at + 9 <= len(payload):
            length, kind = int.from_bytes(payload[at:at + 3], 'big'), payload[at + 3]
            frames += 1
            # A HEADERS frame from the client opens a stream: one gRPC call.
            streams += kind == 1
            at += 9 + length
    seconds = (windows[-1][1] - windows[0][0]) / 1e9 * len(pids)
    print(f'  between handovers, per candidate: {streams / seconds:.2f} calls/s, '
          f'{frames / seconds:.2f} HTTP/2 frames/s sent to etcd')


if __name__ == '__main__':
    directory = sys.argv[1]
    if '--' in sys.argv:
        record(directory, sys.argv[sys.argv.index('--') + 1:])
    analyse(directory)
