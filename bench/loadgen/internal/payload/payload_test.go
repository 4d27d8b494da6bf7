package payload

import (
	"testing"
	"time"
)

func TestRoundTrip(t *testing.T) {
	at := time.Unix(1700000000, 123456789)
	p := Encode(42<<32|7, at, 140)
	if len(p) != 140 {
		t.Fatalf("size %d, want 140", len(p))
	}
	id, sent, err := Decode(p)
	if err != nil || id != 42<<32|7 || !sent.Equal(at) {
		t.Fatalf("decoded %d %v %v", id, sent, err)
	}
	if _, _, err := Decode(p[:10]); err != ErrShort {
		t.Fatalf("short payload: %v", err)
	}
}
