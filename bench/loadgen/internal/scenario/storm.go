package scenario

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"chatconnect.dev/loadgen/internal/metrics"
)

// StormParams configures workload (c): new connections per second against one gateway.
type StormParams struct {
	PerSecond int
	Duration  time.Duration
	// Retries is how often a refused handshake is tried again after its retry hint
	// (or a second when the refusal carries none).
	Retries int
	// Hold is how long the survivors stay connected before they are counted.
	Hold time.Duration
}

// Storm opens PerSecond connections a second for Duration, each one its own TCP
// connection and handshake, then holds them and counts streams that ended on their own.
func Storm(ctx context.Context, env Env, p StormParams) (Result, error) {
	total := p.PerSecond * int(p.Duration.Seconds())
	f, err := provision(ctx, env, total)
	if err != nil {
		return Result{}, err
	}
	defer f.close()
	handshakes := metrics.NewLatency()
	var (
		wg        sync.WaitGroup
		refused   atomic.Int64
		recovered atomic.Int64
		launched  atomic.Int64
	)
	say("storm: %d connections/s for %s (%d in all)", p.PerSecond, p.Duration, total)
	interval := time.Second / time.Duration(p.PerSecond)
	started := time.Now()
	report := progress("storm: launched", total)
	for i := 0; i < total; i++ {
		// Each launch at its own instant: an even storm, not bursts per second.
		if wait := time.Until(started.Add(time.Duration(i) * interval)); wait > 0 {
			time.Sleep(wait)
		}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for attempt := 0; attempt <= p.Retries; attempt++ {
				conn, took, err := f.dial(ctx, i)
				if err == nil {
					f.conns[i] = conn
					handshakes.Record(took)
					if attempt > 0 {
						recovered.Add(1)
					}
					return
				}
				refused.Add(1)
				time.Sleep(retryHint(err))
			}
		}(i)
		report(int(launched.Add(1)))
	}
	wg.Wait()
	stormSeconds := time.Since(started).Seconds()
	rss, _ := residentKB(env.ServerPIDs)
	say("storm: %d connected; holding them %s", f.connected(), p.Hold)
	time.Sleep(p.Hold)
	connected, endedCount, errs := f.survivors()
	r := Result{
		Scenario: "storm",
		Peer:     env.Peer.Name(),
		Params:   map[string]any{"per_second": p.PerSecond, "duration_s": p.Duration.Seconds(), "connections": total},
		Seconds:  stormSeconds,
		Latency:  handshakes.Summary(),
		Errors:   errs,
		Extra: map[string]float64{
			"connected":            float64(connected),
			"refused_handshakes":   float64(refused.Load()),
			"recovered_by_retry":   float64(recovered.Load()),
			"streams_ended":        float64(endedCount),
			"achieved_per_second":  float64(connected) / stormSeconds,
			"server_rss_mib_after": float64(rss) / 1024,
		},
	}
	if connected < total {
		r.Notes = append(r.Notes, fmt.Sprintf("only %d of %d devices connected", connected, total))
	}
	if endedCount > 0 {
		r.Notes = append(r.Notes, fmt.Sprintf("%d streams ended after connecting", endedCount))
	}
	say("storm: %d/%d connected, handshake p50 %.1f ms p99 %.1f ms, %d refused (%d recovered), %d ended",
		connected, total, r.Latency.P50, r.Latency.P99, refused.Load(), recovered.Load(), endedCount)
	return r, nil
}

func retryHint(err error) time.Duration { return metrics.RetryDelay(err, time.Second) }
