// Where a handover's time goes, as bench/src/candidate-trace.ts records it for the Node
// candidates: every etcd request this process sends (gRPC unary calls, at each attempt) and
// every watch response carrying a delete event it receives, with CLOCK_MONOTONIC times. The
// cost is a clock read per request; nothing is sent to the parent until after an `elected`
// timestamp.
package main

import (
	"context"
	"strings"
	"sync"

	pb "go.etcd.io/etcd/etcdserver/etcdserverpb"
	"go.etcd.io/etcd/mvcc/mvccpb"
	"google.golang.org/grpc"
)

type request struct {
	op    string
	sent  string
	reply string // "" while in flight
}

// tracer is the record of one process (the last 64 requests).
type tracer struct {
	mu         sync.Mutex
	requests   []*request
	lastDelete string // "" when none since the last `elected`
}

// dialOptions hook the tracer into the client's gRPC connection, after clientv3's own
// interceptors (so each retry is a request).
func (t *tracer) dialOptions() []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithChainUnaryInterceptor(t.unary),
		grpc.WithChainStreamInterceptor(t.stream),
	}
}

func (t *tracer) unary(ctx context.Context, method string, req, reply interface{},
	cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	entry := &request{op: label(method, req), sent: now()}
	t.mu.Lock()
	t.requests = append(t.requests, entry)
	if len(t.requests) > 64 {
		t.requests = t.requests[1:]
	}
	t.mu.Unlock()
	err := invoker(ctx, method, req, reply, cc, opts...)
	at := now()
	t.mu.Lock()
	entry.reply = at
	t.mu.Unlock()
	return err
}

func (t *tracer) stream(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn,
	method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	s, err := streamer(ctx, desc, cc, method, opts...)
	if err != nil || !strings.HasSuffix(method, "/Watch") {
		return s, err
	}
	return &watchStream{ClientStream: s, t: t}, nil
}

// watchStream notes when a watch response with a delete event has been received and decoded
// (before clientv3's watcher hands it to the election's channel).
type watchStream struct {
	grpc.ClientStream
	t *tracer
}

func (w *watchStream) RecvMsg(m interface{}) error {
	err := w.ClientStream.RecvMsg(m)
	if resp, ok := m.(*pb.WatchResponse); ok && err == nil {
		for _, ev := range resp.Events {
			if ev.Type == mvccpb.DELETE {
				at := now()
				w.t.mu.Lock()
				w.t.lastDelete = at
				w.t.mu.Unlock()
				break
			}
		}
	}
	return err
}

// leaveSince is the first delete sent at or after `from` (what a resign hands over with).
func (t *tracer) leaveSince(from string) map[string]interface{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, r := range t.requests {
		if r.op == "txn delete" && !before(r.sent, from) {
			return r.json()
		}
	}
	return nil
}

// sinceLastDelete is, at `elected`, when the last delete event arrived and the requests sent
// since; nil when no delete event came (the first term).
func (t *tracer) sinceLastDelete() map[string]interface{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	at := t.lastDelete
	if at == "" {
		return nil
	}
	t.lastDelete = ""
	after := []map[string]interface{}{}
	for _, r := range t.requests {
		if !before(r.sent, at) {
			after = append(after, r.json())
		}
	}
	return map[string]interface{}{"deleteEventAt": at, "after": after}
}

func (r *request) json() map[string]interface{} {
	out := map[string]interface{}{"op": r.op, "sent": r.sent}
	if r.reply != "" {
		out["reply"] = r.reply
	}
	return out
}

// before compares two decimal timestamps of the same clock.
func before(a, b string) bool {
	if len(a) != len(b) {
		return len(a) < len(b)
	}
	return a < b
}

// label names a request as candidate-trace.ts does: `txn delete`, `txn put`, `range`…
func label(method string, req interface{}) string {
	if txn, ok := req.(*pb.TxnRequest); ok {
		kind := "txn"
		for _, op := range txn.Success {
			switch {
			case op.GetRequestDeleteRange() != nil:
				return "txn delete"
			case op.GetRequestPut() != nil:
				kind = "txn put"
			case op.GetRequestRange() != nil && kind == "txn":
				kind = "txn read"
			}
		}
		return kind
	}
	switch method[strings.LastIndex(method, "/")+1:] {
	case "Range":
		return "range"
	case "Put":
		return "put"
	case "DeleteRange":
		return "delete"
	case "LeaseGrant":
		return "lease grant"
	case "LeaseRevoke":
		return "lease revoke"
	}
	return strings.ToLower(method[strings.LastIndex(method, "/")+1:])
}
