package metrics

import (
	"errors"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

func TestLedgerCountsLostDuplicatedAndStray(t *testing.T) {
	l := NewLedger()
	for m := uint64(1); m <= 4; m++ {
		l.Expect(Key{Message: m, Recipient: 7})
	}
	l.Expect(Key{Message: 5, Recipient: 7})
	l.Forget(Key{Message: 5, Recipient: 7}) // refused by the server: not lost
	if !l.Deliver(Key{Message: 1, Recipient: 7}) || l.Deliver(Key{Message: 1, Recipient: 7}) {
		t.Fatal("first delivery must count as first, the second must not")
	}
	l.Deliver(Key{Message: 2, Recipient: 7})
	l.Deliver(Key{Message: 3, Recipient: 8}) // never expected for recipient 8
	got := l.Counts()
	want := Counts{Expected: 4, Delivered: 2, Lost: 2, Duplicates: 1, Stray: 1}
	if got != want {
		t.Fatalf("counts %+v, want %+v", got, want)
	}
	if l.Outstanding() != 2 {
		t.Fatalf("outstanding %d, want 2", l.Outstanding())
	}
}

func TestCodeNamesGRPCStatusAndReason(t *testing.T) {
	st, _ := status.New(codes.Unavailable, "busy").WithDetails(
		&errdetails.ErrorInfo{Reason: "OVERLOADED"},
		&errdetails.RetryInfo{RetryDelay: durationpb.New(1500 * time.Millisecond)},
	)
	if got := Code(st.Err()); got != "UNAVAILABLE/OVERLOADED" {
		t.Fatalf("code %q", got)
	}
	if got := RetryDelay(st.Err(), time.Second); got != 1500*time.Millisecond {
		t.Fatalf("retry delay %v", got)
	}
	if got := Code(status.Error(codes.ResourceExhausted, "x")); got != "RESOURCE_EXHAUSTED" {
		t.Fatalf("code %q", got)
	}
	if got := Code(&Coded{Code: "XMPP", Reason: "service-unavailable"}); got != "XMPP/service-unavailable" {
		t.Fatalf("code %q", got)
	}
	if got := RetryDelay(errors.New("plain"), time.Second); got != time.Second {
		t.Fatalf("fallback %v", got)
	}
}

func TestLatencySummaryInMilliseconds(t *testing.T) {
	l := NewLatency()
	for i := 1; i <= 100; i++ {
		l.Record(time.Duration(i) * time.Millisecond)
	}
	s := l.Summary()
	if s.Count != 100 || s.P50 < 49.9 || s.P50 > 50.1 || s.Max < 99.9 || s.Max > 100.1 {
		t.Fatalf("summary %+v", s)
	}
}
