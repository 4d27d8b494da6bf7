package scenario

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"chatconnect.dev/loadgen/internal/metrics"
)

// DrainParams configures workload (d): a device reconnecting to a stored backlog.
type DrainParams struct {
	Backlog     int
	Senders     int
	PayloadSize int
	Timeout     time.Duration
}

// Drain has Senders users send Backlog messages to one offline user, then connects it
// and times how long its backlog takes to arrive.
func Drain(ctx context.Context, env Env, p DrainParams) (Result, error) {
	f, err := provision(ctx, env, p.Senders+1)
	if err != nil {
		return Result{}, err
	}
	defer f.close()
	const offline = 0
	senders := make([]int, p.Senders)
	for i := range senders {
		senders[i] = i + 1
	}
	f.connect(ctx, senders, nil, nil)
	w := newWindow()
	f.current.Store(w)
	var (
		seq      atomic.Uint64
		accepted atomic.Int64
		wg       sync.WaitGroup
	)
	say("drain: %d senders storing %d messages for an offline device", p.Senders, p.Backlog)
	report := progress("drain: stored", p.Backlog)
	stored := time.Now()
	for _, s := range senders {
		wg.Add(1)
		go func(sender int) {
			defer wg.Done()
			// Each sender keeps a few sends in flight; the backlog is what was accepted.
			var inner sync.WaitGroup
			for k := 0; k < 8; k++ {
				inner.Add(1)
				go func() {
					defer inner.Done()
					for {
						id := seq.Add(1)
						if id > uint64(p.Backlog) {
							return
						}
						if f.send(ctx, w, id, sender, offline, p.PayloadSize) {
							report(int(accepted.Add(1)))
						}
					}
				}()
			}
			inner.Wait()
		}(s)
	}
	wg.Wait()
	storeSeconds := time.Since(stored).Seconds()
	say("drain: %d stored in %.1f s; connecting the offline device", accepted.Load(), storeSeconds)
	// Latency here would measure how long the device was offline; the drain is timed
	// from the reconnect instead.
	w.latency = metrics.NewLatency()
	reconnect := time.Now()
	conn, handshake, err := f.dial(ctx, offline)
	if err != nil {
		return Result{}, fmt.Errorf("reconnecting the offline device: %w", err)
	}
	f.conns[offline] = conn
	settle(w, p.Timeout)
	counts := w.ledger.Counts()
	drainSeconds := time.Duration(w.lastAt.Load() - reconnect.UnixNano()).Seconds()
	errs := f.errors.Snapshot()
	r := Result{
		Scenario: "drain",
		Peer:     env.Peer.Name(),
		Params:   map[string]any{"backlog": p.Backlog, "senders": p.Senders, "payload_bytes": p.PayloadSize},
		Seconds:  drainSeconds,
		Sent:     int64(p.Backlog),
		Accepted: accepted.Load(),
		Ledger:   counts,
		PerSec:   float64(counts.Delivered) / drainSeconds,
		Errors:   errs,
		Extra: map[string]float64{
			"store_seconds":     storeSeconds,
			"stored_per_second": float64(accepted.Load()) / storeSeconds,
			"handshake_ms":      float64(handshake.Microseconds()) / 1000,
			"drain_seconds":     drainSeconds,
		},
	}
	r.Notes = notes(counts, errs)
	say("drain: %d delivered in %.2f s (%.0f/s), lost %d, duplicated %d",
		counts.Delivered, drainSeconds, r.PerSec, counts.Lost, counts.Duplicates)
	return r, nil
}
