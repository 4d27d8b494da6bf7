// Package scenario holds the named workloads: chat (1:1), group (fan-out), storm
// (connection storm), drain (offline backlog) and idle (idle connections).
package scenario

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"chatconnect.dev/loadgen/internal/metrics"
	"chatconnect.dev/loadgen/internal/payload"
	"chatconnect.dev/loadgen/internal/peer"
)

// Env is what every scenario runs with.
type Env struct {
	Peer peer.Peer
	// ServerPIDs are the server's processes, whose resident memory the idle and storm
	// scenarios read (summed) from /proc.
	ServerPIDs []int
	// ConnectConcurrency bounds handshakes in flight while a fleet connects.
	ConnectConcurrency int
}

// say prints progress to stderr, so stdout stays the JSON result.
func say(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "loadgen: "+format+"\n", args...)
}

// progress returns a callback that prints "<what> i/n" at most every second and at n.
func progress(what string, n int) func(int) {
	var last atomic.Int64
	return func(done int) {
		now := time.Now().UnixNano()
		prev := last.Load()
		if done == n || (now-prev > int64(time.Second) && last.CompareAndSwap(prev, now)) {
			say("%s %d/%d", what, done, n)
		}
	}
}

// window is one measurement interval's ledger and histograms; a fleet's handlers write
// into whichever window is current.
type window struct {
	ledger    *metrics.Ledger
	latency   *metrics.Latency
	started   time.Time
	lastAt    atomic.Int64 // unix nanos of the latest first delivery
	delivered atomic.Int64
	// onFirst, when set, sees every first delivery (the group scenario's per-message
	// last-member tally).
	onFirst func(id uint64, at time.Time)
}

func newWindow() *window {
	return &window{ledger: metrics.NewLedger(), latency: metrics.NewLatency(), started: time.Now()}
}

// fleet is a set of provisioned users, connected or not, whose deliveries are checked
// against the current window.
type fleet struct {
	env     Env
	users   []peer.User
	conns   []peer.Conn
	current atomic.Pointer[window]
	errors  *metrics.Errors
}

func provision(ctx context.Context, env Env, n int) (*fleet, error) {
	say("provisioning %d users on %s", n, env.Peer.Name())
	users, err := env.Peer.Provision(ctx, n, progress("provisioned", n))
	if err != nil {
		return nil, err
	}
	f := &fleet{env: env, users: users, conns: make([]peer.Conn, n), errors: metrics.NewErrors()}
	f.current.Store(newWindow())
	return f, nil
}

// handler checks one recipient's deliveries against the current window.
func (f *fleet) handler(recipient int) peer.Handler {
	return func(d peer.Delivery) {
		id, sentAt, err := payload.Decode(d.Payload)
		if err != nil {
			f.errors.AddName("CLIENT/UNREADABLE_PAYLOAD")
			return
		}
		w := f.current.Load()
		if w.ledger.Deliver(metrics.Key{Message: id, Recipient: uint32(recipient)}) {
			w.latency.Record(d.At.Sub(sentAt))
			w.delivered.Add(1)
			w.lastAt.Store(d.At.UnixNano())
			if w.onFirst != nil {
				w.onFirst(id, d.At)
			}
		}
	}
}

// connect connects the users at indexes, ConnectConcurrency at a time, recording
// handshake latency; a failed handshake is counted, and the user left unconnected.
func (f *fleet) connect(ctx context.Context, indexes []int, handshakes *metrics.Latency, onEach func(done int)) {
	limit := f.env.ConnectConcurrency
	if limit <= 0 {
		limit = 64
	}
	gate := make(chan struct{}, limit)
	var (
		wg   sync.WaitGroup
		done atomic.Int64
	)
	for _, i := range indexes {
		gate <- struct{}{}
		wg.Add(1)
		go func(i int) {
			defer func() { <-gate; wg.Done() }()
			conn, took, err := f.dial(ctx, i)
			if err == nil {
				f.conns[i] = conn
				if handshakes != nil {
					handshakes.Record(took)
				}
			}
			if onEach != nil {
				onEach(int(done.Add(1)))
			}
		}(i)
	}
	wg.Wait()
}

// dial connects user i once, within 30 s.
func (f *fleet) dial(ctx context.Context, i int) (peer.Conn, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	started := time.Now()
	conn, err := f.env.Peer.Connect(ctx, f.users[i], f.handler(i))
	if err != nil {
		f.errors.Add(err)
		return nil, 0, err
	}
	return conn, time.Since(started), nil
}

// connected counts open connections.
func (f *fleet) connected() int {
	n := 0
	for _, c := range f.conns {
		if c != nil {
			n++
		}
	}
	return n
}

// survivors counts the connections still open and those whose stream ended without
// Close (cancelled, reset, GoAway); errs are the fleet's errors plus why each ended
// ("ENDED/<code>").
func (f *fleet) survivors() (connected, ended int, errs map[string]int64) {
	errs = f.errors.Snapshot()
	for _, c := range f.conns {
		if c == nil {
			continue
		}
		connected++
		if w, ok := c.(peer.Watched); ok && w.Err() != nil {
			ended++
			errs["ENDED/"+metrics.Code(w.Err())]++
		}
	}
	return connected, ended, errs
}

// close closes every connection, many at a time: a polite close waits for the server's
// side of the goodbye, and thousands of those one after another would take minutes.
func (f *fleet) close() {
	gate := make(chan struct{}, 256)
	var wg sync.WaitGroup
	for _, c := range f.conns {
		if c == nil {
			continue
		}
		gate <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-gate; wg.Done() }()
			_ = c.Close()
		}()
	}
	wg.Wait()
}

// send sends one message from sender to recipient under the current window, recording
// the expectation first and withdrawing it if the server refuses the send.
func (f *fleet) send(ctx context.Context, w *window, id uint64, sender, recipient int, size int) bool {
	key := metrics.Key{Message: id, Recipient: uint32(recipient)}
	w.ledger.Expect(key)
	err := f.conns[sender].Send(ctx, f.users[recipient], payload.Encode(id, time.Now(), size))
	if err != nil {
		w.ledger.Forget(key)
		f.errors.Add(err)
		return false
	}
	return true
}

// settle waits until every accepted message of w arrived, or timeout passed.
func settle(w *window, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for w.ledger.Outstanding() > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
}

// messageResult is what every messaging scenario reports about a window: the ledger's
// verdict, delivered per second since the window opened, latency, and errors.
func (w *window) messageResult(scenario string, f *fleet, params map[string]any, sent, accepted int64) Result {
	elapsed := max(time.Duration(w.lastAt.Load()-w.started.UnixNano()), 0) // 0: nothing arrived
	counts := w.ledger.Counts()
	errs := f.errors.Snapshot()
	return Result{
		Scenario: scenario,
		Peer:     f.env.Peer.Name(),
		Params:   params,
		Seconds:  elapsed.Seconds(),
		Sent:     sent,
		Accepted: accepted,
		Ledger:   counts,
		PerSec:   float64(counts.Delivered) / max(elapsed.Seconds(), 1e-9),
		Latency:  w.latency.Summary(),
		Errors:   errs,
		Notes:    notes(counts, errs),
	}
}

// notes says loudly what a ledger shows went wrong.
func notes(c metrics.Counts, errs map[string]int64) []string {
	var out []string
	if c.Lost > 0 {
		out = append(out, fmt.Sprintf("LOST %d of %d accepted messages", c.Lost, c.Expected))
	}
	if c.Duplicates > 0 {
		out = append(out, fmt.Sprintf("DUPLICATED %d deliveries", c.Duplicates))
	}
	if c.Stray > 0 {
		out = append(out, fmt.Sprintf("%d deliveries of messages this window never sent", c.Stray))
	}
	for _, k := range metrics.SortedKeys(errs) {
		out = append(out, fmt.Sprintf("%d errors %s", errs[k], k))
	}
	return out
}
