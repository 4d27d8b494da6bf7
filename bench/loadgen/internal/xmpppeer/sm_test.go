package xmpppeer

import (
	"errors"
	"testing"
)

// released reports whether p's Send has its result, and which.
func released(p *pending) (bool, error) {
	select {
	case err := <-p.done:
		return true, err
	default:
		return false, nil
	}
}

func TestAcksReleaseOnlyBehindAFence(t *testing.T) {
	var a acks
	p1, needR, _ := a.add("1", true)
	if !needR {
		t.Fatal("first stanza must ask for an ack")
	}
	p2, needR, _ := a.add("2", true)
	if needR {
		t.Fatal("a second <r/> while one is in flight")
	}
	// The answer covers only p1: nothing is released yet, and we must ask again.
	if !a.answered(1) {
		t.Fatal("answered(1) must ask again while p2 waits")
	}
	if ok, _ := released(p1); ok {
		t.Fatal("p1 released by the answer that first covered it (no fence)")
	}
	// Covers p2; fences p1.
	if !a.answered(2) {
		t.Fatal("answered(2) must ask again while p2 waits for its fence")
	}
	if ok, err := released(p1); !ok || err != nil {
		t.Fatalf("p1 after its fence: released %v, err %v", ok, err)
	}
	if ok, _ := released(p2); ok {
		t.Fatal("p2 released without a fence")
	}
	if a.answered(2) {
		t.Fatal("nothing waits: no new <r/>")
	}
	if ok, err := released(p2); !ok || err != nil {
		t.Fatalf("p2 after its fence: released %v, err %v", ok, err)
	}
}

func TestAcksBounceAndClose(t *testing.T) {
	var a acks
	bounce := errors.New("service-unavailable")
	p1, _, _ := a.add("1", true)
	p2, _, _ := a.add("2", true)
	a.bounced("1", bounce)
	if ok, err := released(p1); !ok || err != bounce {
		t.Fatalf("bounced p1: released %v, err %v", ok, err)
	}
	gone := errors.New("gone")
	a.close(gone)
	if ok, err := released(p2); !ok || err != gone {
		t.Fatalf("p2 on close: released %v, err %v", ok, err)
	}
	if _, _, err := a.add("3", true); err != gone {
		t.Fatalf("add after close: err %v", err)
	}
}

func TestAcksCountWrapsAt32Bits(t *testing.T) {
	a := acks{sent: ^uint32(0) - 1}
	p1, _, _ := a.add("1", true) // seq 2^32-1
	p2, _, _ := a.add("2", true) // seq 0 after the wrap
	a.answered(0)                // covers both
	a.answered(0)                // fences both
	for i, p := range []*pending{p1, p2} {
		if ok, err := released(p); !ok || err != nil {
			t.Fatalf("p%d across the wrap: released %v, err %v", i+1, ok, err)
		}
	}
}
