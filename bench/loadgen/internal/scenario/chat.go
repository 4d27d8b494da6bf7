package scenario

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"chatconnect.dev/loadgen/internal/metrics"
)

// ChatParams configures workload (a): users online, each sending to random contacts.
type ChatParams struct {
	Users       int
	Duration    time.Duration
	PayloadSize int
	// Window is the sends each user keeps in flight in the closed-loop step that finds
	// the maximum rate.
	Window int
	// Rates are open-loop steps, in messages per second per user; a rate of 0 is the
	// closed-loop step. Fractions (Loads) of the closed-loop maximum run after it.
	Rates []float64
	Loads []float64
	// MaxInFlight bounds open-loop sends waiting for the server; beyond it the generator
	// counts CLIENT/BACKLOG rather than queue without end.
	MaxInFlight int
	Settle      time.Duration
}

// Chat runs workload (a) step by step on one fleet, one Result per step.
func Chat(ctx context.Context, env Env, p ChatParams) ([]Result, error) {
	f, err := provision(ctx, env, p.Users)
	if err != nil {
		return nil, err
	}
	defer f.close()
	all := make([]int, p.Users)
	for i := range all {
		all[i] = i
	}
	say("connecting %d users", p.Users)
	f.connect(ctx, all, nil, progress("connected", p.Users))
	if n := f.connected(); n < p.Users {
		say("only %d of %d users connected; sending among those", n, p.Users)
	}
	var results []Result
	maxRate := 0.0
	for step, rate := range p.Rates {
		r := chatStep(ctx, f, p, step, rate)
		if rate == 0 {
			maxRate = r.PerSec / float64(f.connected())
		}
		results = append(results, r)
	}
	for i, load := range p.Loads {
		if maxRate == 0 {
			break
		}
		r := chatStep(ctx, f, p, len(p.Rates)+i, load*maxRate)
		r.Params["load_of_max"] = load
		results = append(results, r)
	}
	return results, nil
}

func chatStep(ctx context.Context, f *fleet, p ChatParams, step int, perUser float64) Result {
	online := make([]int, 0, len(f.conns))
	for i, c := range f.conns {
		if c != nil {
			online = append(online, i)
		}
	}
	w := newWindow()
	f.current.Store(w)
	f.errors = metrics.NewErrors()
	var sent, accepted atomic.Int64
	var seq atomic.Uint64
	nextID := func() uint64 { return uint64(step)<<56 | seq.Add(1) }
	pick := func(sender int) int {
		for {
			r := online[rand.IntN(len(online))]
			if r != sender || len(online) == 1 {
				return r
			}
		}
	}
	mode := "open loop"
	if perUser == 0 {
		mode = "closed loop"
	}
	say("chat step %d (%s, %.1f msg/s per user, %d users) for %s", step, mode, perUser, len(online), p.Duration)
	stepCtx, cancel := context.WithTimeout(ctx, p.Duration)
	defer cancel()
	var wg sync.WaitGroup
	if perUser == 0 {
		for _, s := range online {
			for k := 0; k < p.Window; k++ {
				wg.Add(1)
				go func(sender int) {
					defer wg.Done()
					for stepCtx.Err() == nil {
						sent.Add(1)
						if f.send(ctx, w, nextID(), sender, pick(sender), p.PayloadSize) {
							accepted.Add(1)
						}
					}
				}(s)
			}
		}
	} else {
		total := perUser * float64(len(online))
		inFlight := make(chan struct{}, max(p.MaxInFlight, 1))
		// One pacer: a tick each millisecond sends what the rate owes by then, so rates
		// above 1,000/s do not depend on timer resolution.
		start := time.Now()
		owed := 0
		ticker := time.NewTicker(time.Millisecond)
	pacing:
		for {
			select {
			case <-stepCtx.Done():
				break pacing
			case now := <-ticker.C:
				due := int(now.Sub(start).Seconds() * total)
				for ; owed < due; owed++ {
					sender := online[rand.IntN(len(online))]
					sent.Add(1)
					select {
					case inFlight <- struct{}{}:
					default:
						f.errors.AddName("CLIENT/BACKLOG")
						continue
					}
					wg.Add(1)
					go func() {
						defer func() { <-inFlight; wg.Done() }()
						if f.send(ctx, w, nextID(), sender, pick(sender), p.PayloadSize) {
							accepted.Add(1)
						}
					}()
				}
			}
		}
		ticker.Stop()
	}
	wg.Wait()
	settle(w, p.Settle)
	r := w.messageResult("chat", f, map[string]any{
		"users": len(online), "step": step, "mode": mode, "rate_per_user": perUser,
		"offered_per_second": perUser * float64(len(online)), "window": p.Window,
		"duration_s": p.Duration.Seconds(), "payload_bytes": p.PayloadSize,
	}, sent.Load(), accepted.Load())
	counts := r.Ledger
	say("chat step %d: %.0f delivered/s, p50 %.1f ms, p99 %.1f ms, lost %d, duplicated %d",
		step, r.PerSec, r.Latency.P50, r.Latency.P99, counts.Lost, counts.Duplicates)
	return r
}
