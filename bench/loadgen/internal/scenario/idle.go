package scenario

import (
	"context"
	"fmt"
	"time"

	"chatconnect.dev/loadgen/internal/metrics"
)

// IdleParams configures workload (e): connected devices doing nothing.
type IdleParams struct {
	Connections int
	// Hold is how long every connection stays idle before the survivors are counted.
	Hold time.Duration
	// SampleEvery is how many connections apart server memory is sampled.
	SampleEvery int
}

// Idle connects Connections devices, samples server memory as they arrive, holds them
// idle, and reports memory per connection and how many streams ended on their own.
func Idle(ctx context.Context, env Env, p IdleParams) (Result, error) {
	f, err := provision(ctx, env, p.Connections)
	if err != nil {
		return Result{}, err
	}
	defer f.close()
	// The server settles after provisioning (caches, collections) before the baseline.
	time.Sleep(3 * time.Second)
	before, err := residentKB(env.ServerPIDs)
	if err != nil {
		return Result{}, err
	}
	series := [][2]float64{{0, float64(before) / 1024}}
	handshakes := metrics.NewLatency()
	for start := 0; start < p.Connections; start += p.SampleEvery {
		batch := make([]int, 0, p.SampleEvery)
		for i := start; i < min(start+p.SampleEvery, p.Connections); i++ {
			batch = append(batch, i)
		}
		f.connect(ctx, batch, handshakes, nil)
		rss, err := residentKB(env.ServerPIDs)
		if err != nil {
			return Result{}, err
		}
		series = append(series, [2]float64{float64(f.connected()), float64(rss) / 1024})
		say("idle: %d connected, server RSS %.0f MiB", f.connected(), float64(rss)/1024)
	}
	say("idle: holding %d connections for %s", f.connected(), p.Hold)
	select {
	case <-time.After(p.Hold):
	case <-ctx.Done():
		return Result{}, ctx.Err()
	}
	after, err := residentKB(env.ServerPIDs)
	if err != nil {
		return Result{}, err
	}
	series = append(series, [2]float64{float64(f.connected()), float64(after) / 1024})
	connected, endedCount, errs := f.survivors()
	r := Result{
		Scenario: "idle",
		Peer:     env.Peer.Name(),
		Params:   map[string]any{"connections": p.Connections, "hold_s": p.Hold.Seconds()},
		Seconds:  p.Hold.Seconds(),
		Latency:  handshakes.Summary(),
		Errors:   errs,
		Extra: map[string]float64{
			"connected":          float64(connected),
			"ended_while_idle":   float64(endedCount),
			"rss_before_mib":     float64(before) / 1024,
			"rss_after_mib":      float64(after) / 1024,
			"kib_per_connection": float64(after-before) / float64(max(connected, 1)),
		},
		Series: map[string][][2]float64{"rss_mib_by_connections": series},
	}
	if connected < p.Connections {
		r.Notes = append(r.Notes, fmt.Sprintf("only %d of %d devices connected", connected, p.Connections))
	}
	if endedCount > 0 {
		r.Notes = append(r.Notes, fmt.Sprintf("%d idle connections ended on their own", endedCount))
	}
	say("idle: %.1f KiB per connection (%d connected, %d ended)", r.Extra["kib_per_connection"], connected, endedCount)
	return r, nil
}
