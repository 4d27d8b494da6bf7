package scenario

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"chatconnect.dev/loadgen/internal/metrics"
	"chatconnect.dev/loadgen/internal/payload"
	"chatconnect.dev/loadgen/internal/peer"
)

// GroupParams configures workload (b): one large group, part of it online.
type GroupParams struct {
	Members int
	// Online is the share of members connected (senders among them).
	Online      float64
	Senders     int
	RatePerSend float64 // messages per second per sender
	Duration    time.Duration
	PayloadSize int
	Settle      time.Duration
}

// Group posts into one group of Members from Senders online members and measures
// send→deliver for every online member, and send→last online member per message.
func Group(ctx context.Context, env Env, p GroupParams) (Result, error) {
	groups, ok := env.Peer.(peer.GroupPeer)
	if !ok {
		return Result{}, fmt.Errorf("%s has no group conversations", env.Peer.Name())
	}
	f, err := provision(ctx, env, p.Members)
	if err != nil {
		return Result{}, err
	}
	defer f.close()
	say("group: creating a group of %d", p.Members)
	g, err := groups.CreateGroup(ctx, f.users[0], f.users[1:])
	if err != nil {
		return Result{}, err
	}
	online := make([]int, int(float64(p.Members)*p.Online))
	for i := range online {
		online[i] = i
	}
	say("group: connecting %d online members", len(online))
	f.connect(ctx, online, nil, progress("group: connected", len(online)))
	reachable := make([]int, 0, len(online))
	for _, i := range online {
		if f.conns[i] != nil {
			reachable = append(reachable, i)
		}
	}
	w := newWindow()
	last := metrics.NewLatency()
	var remaining sync.Map // message id → *atomic.Int64 (online members still to reach)
	w.onFirst = func(id uint64, at time.Time) {
		if left, ok := remaining.Load(id); ok && left.(*atomic.Int64).Add(-1) == 0 {
			sentAt, _ := sentTimes.Load(id)
			last.Record(at.Sub(sentAt.(time.Time)))
		}
	}
	f.current.Store(w)
	var (
		seq            atomic.Uint64
		sent, accepted atomic.Int64
		wg             sync.WaitGroup
	)
	say("group: %d senders at %.1f msg/s each for %s", p.Senders, p.RatePerSend, p.Duration)
	stepCtx, cancel := context.WithTimeout(ctx, p.Duration)
	defer cancel()
	for s := 0; s < p.Senders && s < len(reachable); s++ {
		sender := reachable[s]
		wg.Add(1)
		go func() {
			defer wg.Done()
			ticker := time.NewTicker(time.Duration(float64(time.Second) / p.RatePerSend))
			defer ticker.Stop()
			for {
				select {
				case <-stepCtx.Done():
					return
				case <-ticker.C:
				}
				id := seq.Add(1)
				recipients := int64(0)
				for _, r := range reachable {
					if r != sender {
						w.ledger.Expect(metrics.Key{Message: id, Recipient: uint32(r)})
						recipients++
					}
				}
				now := time.Now()
				sentTimes.Store(id, now)
				left := &atomic.Int64{}
				left.Store(recipients)
				remaining.Store(id, left)
				sent.Add(1)
				wg.Add(1)
				go func() {
					defer wg.Done()
					conn := f.conns[sender].(peer.GroupConn)
					if err := conn.SendGroup(ctx, g, payload.Encode(id, now, p.PayloadSize)); err != nil {
						f.errors.Add(err)
						for _, r := range reachable {
							w.ledger.Forget(metrics.Key{Message: id, Recipient: uint32(r)})
						}
						return
					}
					accepted.Add(1)
				}()
			}
		}()
	}
	wg.Wait()
	settle(w, p.Settle)
	lastSummary := last.Summary()
	r := w.messageResult("group", f, map[string]any{
		"members": p.Members, "online": len(reachable), "senders": p.Senders,
		"rate_per_sender": p.RatePerSend, "duration_s": p.Duration.Seconds(), "payload_bytes": p.PayloadSize,
	}, sent.Load(), accepted.Load())
	r.Extra = map[string]float64{
		"last_member_p50_ms": lastSummary.P50,
		"last_member_p99_ms": lastSummary.P99,
		"last_member_max_ms": lastSummary.Max,
		"messages_complete":  float64(lastSummary.Count),
	}
	counts := r.Ledger
	say("group: %d messages, %.0f deliveries/s, last online member p50 %.0f ms p99 %.0f ms, lost %d, duplicated %d",
		accepted.Load(), r.PerSec, lastSummary.P50, lastSummary.P99, counts.Lost, counts.Duplicates)
	return r, nil
}

var sentTimes sync.Map // message id → time.Time
