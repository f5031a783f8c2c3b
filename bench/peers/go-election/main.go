// One etcd clientv3/concurrency.Election participant of the bench's handover and failover
// suites, as a Go service would use it: one client, one session (lease) per process,
// Campaign blocking until this process leads, Resign then a new Campaign to rejoin at the
// back of the queue.
//
// It speaks the bench's candidate protocol (bench/src/candidate-protocol.ts) in JSON lines:
// commands on stdin ({"op":"campaign"|"resign"|"close"}), events on stdout ("ready",
// "elected", "resigned", "error"). Timestamps are CLOCK_MONOTONIC nanoseconds as decimal
// strings, the clock of Node's process.hrtime.bigint(). End of stdin is "close".
//
// Like the Node etcd candidates, it records its etcd requests and watch delete events
// (trace.go), so the bench can split a handover into its steps.
//
// Built by the bench with GO111MODULE=off against Debian's golang-etcd-server-dev (3.4).
//
// Usage: go-election '<CandidateConfig as JSON>'
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	"go.etcd.io/etcd/clientv3"
	"go.etcd.io/etcd/clientv3/concurrency"
	"golang.org/x/sys/unix"
)

type config struct {
	Endpoint string `json:"endpoint"`
	Election string `json:"election"`
	TTLMs    int    `json:"ttlMs"`
	Value    string `json:"value"`
}

var out = struct {
	sync.Mutex
	enc *json.Encoder
}{enc: json.NewEncoder(os.Stdout)}

// emit writes one event line (one write per line, never interleaved).
func emit(event map[string]interface{}) {
	out.Lock()
	defer out.Unlock()
	_ = out.enc.Encode(event)
}

func report(err error) {
	emit(map[string]interface{}{"ev": "error", "message": err.Error()})
}

// now reads CLOCK_MONOTONIC, as process.hrtime.bigint() does in the bench's Node processes.
func now() string {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		panic(err)
	}
	return strconv.FormatInt(ts.Nano(), 10)
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: go-election '<CandidateConfig JSON>'")
		os.Exit(2)
	}
	var cfg config
	if err := json.Unmarshal([]byte(os.Args[1]), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, "go-election: bad config:", err)
		os.Exit(2)
	}
	ttlSeconds := cfg.TTLMs / 1000
	if ttlSeconds < 1 {
		ttlSeconds = 1
	}

	trace := &tracer{}
	client, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{cfg.Endpoint},
		DialTimeout: 5 * time.Second,
		DialOptions: trace.dialOptions(),
	})
	if err != nil {
		report(err)
		os.Exit(1)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	_, err = client.Get(ctx, "bench/warm-up")
	cancel()
	if err != nil {
		report(err)
		os.Exit(1)
	}
	session, err := concurrency.NewSession(client, concurrency.WithTTL(ttlSeconds))
	if err != nil {
		report(err)
		os.Exit(1)
	}
	// The TTL in force: the lease's granted TTL.
	ttlMs := ttlSeconds * 1000
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	if lease, err := client.TimeToLive(ctx, session.Lease()); err == nil {
		ttlMs = int(lease.GrantedTTL) * 1000
	}
	cancel()
	emit(map[string]interface{}{"ev": "ready", "pid": os.Getpid()})

	// The campaign in progress (nil while none), and its election once it leads.
	var mu sync.Mutex
	var leading *concurrency.Election
	stop, stopAll := context.WithCancel(context.Background())

	campaign := func() {
		election := concurrency.NewElection(session, cfg.Election)
		go func() {
			if err := election.Campaign(stop, cfg.Value); err != nil {
				if stop.Err() == nil {
					report(err)
				}
				return
			}
			t := now()
			mu.Lock()
			leading = election
			mu.Unlock()
			event := map[string]interface{}{"ev": "elected", "t": t, "ttlMs": ttlMs, "epoch": ""}
			if since := trace.sinceLastDelete(); since != nil {
				event["trace"] = since
			}
			emit(event)
		}()
	}

	resign := func() {
		mu.Lock()
		election := leading
		leading = nil
		mu.Unlock()
		t0 := now()
		if election != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			if err := election.Resign(ctx); err != nil {
				report(err)
			}
			cancel()
		}
		t1 := now()
		event := map[string]interface{}{"ev": "resigned", "t0": t0, "t1": t1}
		if leave := trace.leaveSince(t0); leave != nil {
			event["leaveRequest"] = leave
		}
		emit(event)
		campaign() // rejoin at the back of the queue
	}

	closeAll := func() {
		// A close that hangs (server gone) must not keep the process.
		time.AfterFunc(3*time.Second, func() { os.Exit(0) })
		stopAll()
		_ = session.Close() // revokes the lease: this candidate's key goes with it
		_ = client.Close()
		os.Exit(0)
	}

	// Commands run one at a time, in order.
	lines := bufio.NewScanner(os.Stdin)
	for lines.Scan() {
		var command struct {
			Op string `json:"op"`
		}
		if err := json.Unmarshal(lines.Bytes(), &command); err != nil {
			report(fmt.Errorf("bad command %q: %w", lines.Text(), err))
			continue
		}
		switch command.Op {
		case "campaign":
			campaign()
		case "resign":
			resign()
		case "close":
			closeAll()
		default:
			report(fmt.Errorf("unknown command %q", command.Op))
		}
	}
	closeAll() // end of stdin: the parent went away
}
