package scenario

import (
	"chatconnect.dev/loadgen/internal/metrics"
)

// Result is one scenario run against one peer, as written to the JSON report.
type Result struct {
	Scenario string             `json:"scenario"`
	Peer     string             `json:"peer"`
	Params   map[string]any     `json:"params"`
	Seconds  float64            `json:"seconds"`
	Sent     int64              `json:"sent"`
	Accepted int64              `json:"accepted"`
	Ledger   metrics.Counts     `json:"ledger"`
	PerSec   float64            `json:"delivered_per_second"`
	Latency  metrics.Summary    `json:"latency"`
	Errors   map[string]int64   `json:"errors"`
	Extra    map[string]float64 `json:"extra,omitempty"`
	// Series are sampled curves (memory against connections).
	Series map[string][][2]float64 `json:"series,omitempty"`
	// Notes say loudly what went wrong (lost or duplicated messages, refused sends).
	Notes []string `json:"notes,omitempty"`
}
