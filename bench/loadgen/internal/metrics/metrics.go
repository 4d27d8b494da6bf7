// Package metrics counts what a scenario observes: send→deliver latency, every message
// expected and delivered (to count the lost and the duplicated), and errors by gRPC code.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Latency is a concurrent histogram of durations, kept in microseconds from 1 µs to 5 min
// with three significant digits.
type Latency struct {
	mu sync.Mutex
	h  *hdrhistogram.Histogram
}

// NewLatency returns an empty histogram.
func NewLatency() *Latency {
	return &Latency{h: hdrhistogram.New(1, int64(5*time.Minute/time.Microsecond), 3)}
}

// Record adds one observation (clamped into the histogram's range).
func (l *Latency) Record(d time.Duration) {
	us := d.Microseconds()
	if us < 1 {
		us = 1
	}
	l.mu.Lock()
	_ = l.h.RecordValue(min(us, l.h.HighestTrackableValue()))
	l.mu.Unlock()
}

// Summary is a histogram's percentiles in milliseconds.
type Summary struct {
	Count int64   `json:"count"`
	P50   float64 `json:"p50_ms"`
	P99   float64 `json:"p99_ms"`
	P999  float64 `json:"p999_ms"`
	Max   float64 `json:"max_ms"`
	Mean  float64 `json:"mean_ms"`
}

// Summary reads the percentiles so far.
func (l *Latency) Summary() Summary {
	l.mu.Lock()
	defer l.mu.Unlock()
	ms := func(us int64) float64 { return float64(us) / 1000 }
	return Summary{
		Count: l.h.TotalCount(),
		P50:   ms(l.h.ValueAtQuantile(50)),
		P99:   ms(l.h.ValueAtQuantile(99)),
		P999:  ms(l.h.ValueAtQuantile(99.9)),
		Max:   ms(l.h.Max()),
		Mean:  l.h.Mean() / 1000,
	}
}

// Key names one expected delivery: a message to one recipient connection.
type Key struct {
	Message   uint64
	Recipient uint32
}

// Ledger counts every message a scenario expects to be delivered, and every delivery, so
// a run can say how many were lost and how many came twice.
type Ledger struct {
	mu        sync.Mutex
	expected  map[Key]struct{}
	delivered map[Key]uint32
	stray     int64
}

// NewLedger returns an empty ledger.
func NewLedger() *Ledger {
	return &Ledger{expected: map[Key]struct{}{}, delivered: map[Key]uint32{}}
}

// Expect records that k must be delivered exactly once. Call it before the send, so a
// fast delivery is never counted as stray.
func (l *Ledger) Expect(k Key) {
	l.mu.Lock()
	l.expected[k] = struct{}{}
	l.mu.Unlock()
}

// Forget withdraws an expectation whose send the server refused (it was never accepted,
// so it is not lost if it never arrives).
func (l *Ledger) Forget(k Key) {
	l.mu.Lock()
	delete(l.expected, k)
	l.mu.Unlock()
}

// Deliver records one delivery of k and reports whether it was the first.
func (l *Ledger) Deliver(k Key) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.expected[k]; !ok {
		l.stray++
		return false
	}
	l.delivered[k]++
	return l.delivered[k] == 1
}

// Counts is the ledger's verdict.
type Counts struct {
	Expected   int64 `json:"expected"`
	Delivered  int64 `json:"delivered"`
	Lost       int64 `json:"lost"`
	Duplicates int64 `json:"duplicates"`
	Stray      int64 `json:"stray"`
}

// Counts compares what was expected with what arrived.
func (l *Ledger) Counts() Counts {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := Counts{Expected: int64(len(l.expected)), Stray: l.stray}
	for k := range l.expected {
		n := int64(l.delivered[k])
		if n == 0 {
			c.Lost++
			continue
		}
		c.Delivered++
		c.Duplicates += n - 1
	}
	return c
}

// Outstanding is how many expected deliveries have not arrived yet.
func (l *Ledger) Outstanding() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for k := range l.expected {
		if l.delivered[k] == 0 {
			n++
		}
	}
	return n
}

// Errors counts failures by gRPC code and ErrorInfo reason ("UNAVAILABLE/OVERLOADED").
type Errors struct {
	mu     sync.Mutex
	counts map[string]int64
}

// NewErrors returns an empty error count.
func NewErrors() *Errors { return &Errors{counts: map[string]int64{}} }

// Add counts err under its code (and reason, when the status has an ErrorInfo). The
// first error of each kind is printed whole, so a run's report can be traced to a cause.
func (e *Errors) Add(err error) {
	name := Code(err)
	if e.AddName(name) == 1 {
		fmt.Fprintf(os.Stderr, "loadgen: first %s: %v\n", name, err)
	}
}

// AddName counts one failure under an explicit name and returns the count so far.
func (e *Errors) AddName(name string) int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.counts[name]++
	return e.counts[name]
}

// Snapshot is a copy of the counts.
func (e *Errors) Snapshot() map[string]int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make(map[string]int64, len(e.counts))
	for k, v := range e.counts {
		out[k] = v
	}
	return out
}

// Total is every failure counted.
func (e *Errors) Total() int64 {
	var n int64
	for _, v := range e.Snapshot() {
		n += v
	}
	return n
}

// Coded is an error carrying a status code and reason from a protocol that is not gRPC
// (ChatConnect's in-stream send failures, XMPP stanza errors).
type Coded struct {
	Code   string
	Reason string
	Msg    string
}

func (c *Coded) Error() string { return c.Code + "/" + c.Reason + ": " + c.Msg }

// Code names an error for the report: its gRPC code, plus the ErrorInfo reason if any.
func Code(err error) string {
	var coded *Coded
	if errors.As(err, &coded) {
		if coded.Reason == "" {
			return coded.Code
		}
		return coded.Code + "/" + coded.Reason
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "DEADLINE_EXCEEDED"
	}
	st, ok := status.FromError(err)
	if !ok {
		return "CLIENT/" + err.Error()
	}
	name := st.Code().String()
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return toUpperSnake(name) + "/" + info.Reason
		}
	}
	return toUpperSnake(name)
}

// toUpperSnake turns grpc-go's code names ("ResourceExhausted") into the canonical
// spelling every other gRPC language uses ("RESOURCE_EXHAUSTED").
func toUpperSnake(s string) string {
	if s == "OK" {
		return s
	}
	out := make([]byte, 0, len(s)+4)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' {
			if i > 0 {
				out = append(out, '_')
			}
			out = append(out, c)
			continue
		}
		out = append(out, c-'a'+'A')
	}
	return string(out)
}

// SortedKeys returns m's keys in order, for stable reports.
func SortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// CanonicalCode names a gRPC code the way every gRPC language but Go spells it.
func CanonicalCode(c codes.Code) string { return toUpperSnake(c.String()) }

// RetryDelay is the delay a refusal asks for (RetryInfo, or ChatConnect's Overloaded
// detail), or fallback when it names none.
func RetryDelay(err error, fallback time.Duration) time.Duration {
	st, ok := status.FromError(err)
	if !ok {
		return fallback
	}
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.RetryInfo); ok {
			return info.GetRetryDelay().AsDuration()
		}
	}
	return fallback
}
