package xmpppeer

import (
	"encoding/xml"
	"strconv"
	"sync"
)

// nsSM is XEP-0198 stream management, version 3.
const nsSM = "urn:xmpp:sm:3"

// The elements of XEP-0198 that the client writes.
var (
	smEnable  = xml.StartElement{Name: xml.Name{Space: nsSM, Local: "enable"}}
	smRequest = xml.StartElement{Name: xml.Name{Space: nsSM, Local: "r"}}
)

func smAnswer(h uint32) xml.StartElement {
	return xml.StartElement{
		Name: xml.Name{Space: nsSM, Local: "a"},
		Attr: []xml.Attr{{Name: xml.Name{Local: "h"}, Value: strconv.FormatUint(uint64(h), 10)}},
	}
}

// acks is the sending half of XEP-0198 for one connection: it numbers the stanzas
// written since <enable/>, asks the server how many it has handled (<r/>), and releases
// each waiting Send when an answer (<a h='N'/>) covers it.
//
// A Send is released only by the answer to a request written after the answer that
// first covered it (a "fence"). ejabberd handles a stanza fully (archives it, routes it,
// and bounces an error to the sender if it cannot) before it counts it, but the bounce
// travels through the sender's own mailbox and can come out after an <a/> for a request
// that was already queued. It cannot come out after the answer to a request sent later,
// so the fence guarantees that Send sees the bounce and returns it.
//
// At most one <r/> is outstanding: when its answer leaves some Send still waiting, the
// reader asks again, so requests are batched under load and one round trip apart idle.
type acks struct {
	mu sync.Mutex
	// sent counts stanzas written since <enable/> (mod 2^32, as h is).
	sent uint32
	// round counts answers received; a pending's covered is the round that covered it.
	round     uint64
	rInFlight bool
	queue     []*pending // by seq, oldest first
	byID      map[string]*pending
	// err is set once the connection is gone; every later add fails with it.
	err error
}

// pending is one stanza whose sender waits for the server to take it.
type pending struct {
	seq      uint32
	id       string
	covered  uint64 // 0 until an answer's h reaches seq
	finished bool
	done     chan error // buffered: the single result never blocks the reader
}

// add numbers one more stanza. With waiter false it is only counted (presence answers,
// IQ results). needR says the caller must write an <r/> after the stanza. The caller
// holds the connection's write lock, so numbering order is wire order.
func (a *acks) add(id string, waiter bool) (p *pending, needR bool, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.err != nil {
		return nil, false, a.err
	}
	a.sent++
	if !waiter {
		return nil, false, nil
	}
	p = &pending{seq: a.sent, id: id, done: make(chan error, 1)}
	a.queue = append(a.queue, p)
	if a.byID == nil {
		a.byID = make(map[string]*pending)
	}
	a.byID[id] = p
	if !a.rInFlight {
		a.rInFlight = true
		needR = true
	}
	return p, needR, nil
}

// answered handles <a h='h'/> and says whether to ask again (some Send still waits).
func (a *acks) answered(h uint32) (needR bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.round++
	a.rInFlight = false
	// Release what an earlier round covered: this answer is the fence behind it.
	i := 0
	for ; i < len(a.queue); i++ {
		p := a.queue[i]
		if p.finished {
			continue
		}
		if p.covered == 0 || p.covered >= a.round {
			break
		}
		a.finish(p, nil)
	}
	clear(a.queue[:i])
	a.queue = a.queue[i:]
	for _, p := range a.queue {
		if p.covered != 0 || p.finished {
			continue
		}
		// seq <= h in serial-number arithmetic: h wraps at 2^32 (XEP-0198 §4).
		if int32(h-p.seq) < 0 {
			break
		}
		p.covered = a.round
	}
	if len(a.queue) > 0 {
		a.rInFlight = true
		return true
	}
	return false
}

// bounced fails the Send of stanza id with err (a stanza error the server sent back).
func (a *acks) bounced(id string, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if p, ok := a.byID[id]; ok && !p.finished {
		a.finish(p, err)
	}
}

// abandon forgets a Send whose caller gave up (its context ended).
func (a *acks) abandon(p *pending) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !p.finished {
		a.finish(p, nil)
	}
}

// close fails every waiting Send, and every later one, with err.
func (a *acks) close(err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.err != nil {
		return
	}
	a.err = err
	for _, p := range a.queue {
		if !p.finished {
			a.finish(p, err)
		}
	}
	a.queue = nil
}

// failure is why the connection is gone (nil while it is up).
func (a *acks) failure() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.err
}

func (a *acks) finish(p *pending, err error) {
	p.finished = true
	delete(a.byID, p.id)
	p.done <- err
}
