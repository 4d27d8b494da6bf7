package xmpppeer

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/xml"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"mellium.im/sasl"
	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/history"
	"mellium.im/xmpp/jid"

	"chatconnect.dev/loadgen/internal/payload"
	"chatconnect.dev/loadgen/internal/peer"
)

const startHint = "start it from the repository root with `tools/peerenv up`"

// peerenvConfig reads PEERENV_* from the environment, else from the file
// tools/peerenv writes, and fails the test if ejabberd is not there.
func peerenvConfig(t *testing.T) Config {
	t.Helper()
	vars := map[string]string{}
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		if home, err := os.UserHomeDir(); err == nil {
			cache = filepath.Join(home, ".cache")
		}
	}
	envFile := filepath.Join(cache, "chatconnect", "peerenv", "env")
	if f, err := os.Open(envFile); err == nil {
		scanner := bufio.NewScanner(f)
		for scanner.Scan() {
			if k, v, ok := strings.Cut(scanner.Text(), "="); ok {
				vars[k] = v
			}
		}
		_ = f.Close()
	}
	for _, k := range []string{"PEERENV_XMPP_ADDR", "PEERENV_XMPP_DOMAIN", "PEERENV_API_URL"} {
		if v := os.Getenv(k); v != "" {
			vars[k] = v
		}
		if vars[k] == "" {
			t.Fatalf("ejabberd is not set up: %s is neither in the environment nor in %s; %s",
				k, envFile, startHint)
		}
	}
	cfg := Config{
		Addr:   vars["PEERENV_XMPP_ADDR"],
		Domain: vars["PEERENV_XMPP_DOMAIN"],
		APIURL: vars["PEERENV_API_URL"],
	}
	probe, err := net.DialTimeout("tcp", cfg.Addr, 2*time.Second)
	if err != nil {
		t.Fatalf("ejabberd does not answer on %s (%v); %s", cfg.Addr, err, startHint)
	}
	_ = probe.Close()
	return cfg
}

func TestSendDeliverArchive(t *testing.T) {
	cfg := peerenvConfig(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	p := New(cfg)
	if p.Name() != "ejabberd" {
		t.Errorf("Name() = %q", p.Name())
	}
	users, err := p.Provision(ctx, 3, nil)
	if err != nil {
		t.Fatalf("Provision: %v (%s)", err, startHint)
	}

	var mu sync.Mutex
	got := map[uint64][][]byte{}
	conns := make([]peer.Conn, len(users))
	for i, u := range users {
		c, err := p.Connect(ctx, u, func(d peer.Delivery) {
			id, _, err := payload.Decode(d.Payload)
			if err != nil {
				t.Errorf("delivery to %s: %v", u.Address(), err)
				return
			}
			mu.Lock()
			got[id] = append(got[id], d.Payload)
			mu.Unlock()
		})
		if err != nil {
			t.Fatalf("Connect %s: %v", u.Address(), err)
		}
		conns[i] = c
		defer c.Close()
	}

	// 50 messages round the triangle, all at once: Send must be safe concurrently.
	const n = 50
	sent := make([][]byte, n)
	from := make([]int, n)
	to := make([]int, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		from[i], to[i] = i%3, (i+1)%3
		sent[i] = binaryPayload(t, uint64(i+1), 16+i*7)
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = conns[from[i]].Send(ctx, users[to[i]], sent[i])
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Send %d: %v", i+1, err)
		}
	}

	// Wait for every delivery, then a little longer to catch a duplicate.
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		done := len(got) == n
		mu.Unlock()
		if done {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	mu.Lock()
	for i := range n {
		copies := got[uint64(i+1)]
		if len(copies) != 1 {
			t.Errorf("message %d arrived %d times, want once", i+1, len(copies))
			continue
		}
		if string(copies[0]) != string(sent[i]) {
			t.Errorf("message %d arrived as %x, sent %x", i+1, copies[0], sent[i])
		}
	}
	if len(got) != n {
		t.Errorf("%d distinct messages arrived, want %d", len(got), n)
	}
	mu.Unlock()

	// Every message is in the sender's and the recipient's archive (mod_mam).
	for ui, u := range users {
		archived := fetchArchive(ctx, t, p, u.(*User))
		for i := range n {
			if from[i] != ui && to[i] != ui {
				continue
			}
			body := base64.StdEncoding.EncodeToString(sent[i])
			if archived[body] != 1 {
				t.Errorf("message %d is %d times in %s's archive, want once",
					i+1, archived[body], u.Address())
			}
		}
	}
}

func TestSendToUnknownUserFails(t *testing.T) {
	cfg := peerenvConfig(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p := New(cfg)
	users, err := p.Provision(ctx, 1, nil)
	if err != nil {
		t.Fatalf("Provision: %v (%s)", err, startHint)
	}
	c, err := p.Connect(ctx, users[0], nil)
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	defer c.Close()
	ghost, _ := jid.New("nobody-"+strings.ToLower(rand.Text()), cfg.Domain, "")
	err = c.Send(ctx, &User{JID: ghost, addr: ghost.String()}, []byte("hello"))
	if err == nil || !strings.Contains(err.Error(), "XMPP/service-unavailable") {
		t.Fatalf("Send to a user that does not exist: err = %v, want XMPP/service-unavailable", err)
	}
	// The connection survives a bounce.
	if err := c.Send(ctx, users[0], []byte("to myself")); err != nil {
		t.Fatalf("Send after a bounce: %v", err)
	}
}

// binaryPayload is a benchmark payload whose padding is random bytes, so the round trip
// proves binary safety (NULs, invalid UTF-8).
func binaryPayload(t *testing.T, id uint64, size int) []byte {
	t.Helper()
	b := payload.Encode(id, time.Now(), size)
	if _, err := rand.Read(b[payload.HeaderSize:]); err != nil {
		t.Fatal(err)
	}
	return b
}

// mamResult is one archived message as a XEP-0313 query returns it.
type mamResult struct {
	Result struct {
		Forwarded struct {
			Message struct {
				Body string `xml:"jabber:client body"`
			} `xml:"jabber:client message"`
		} `xml:"urn:xmpp:forward:0 forwarded"`
	} `xml:"urn:xmpp:mam:2 result"`
}

// fetchArchive asks ejabberd for u's whole archive over a second, plain session (MAM,
// XEP-0313) and counts the bodies.
func fetchArchive(ctx context.Context, t *testing.T, p *Peer, u *User) map[string]int {
	t.Helper()
	tcp, err := net.Dial("tcp", p.cfg.Addr)
	if err != nil {
		t.Fatal(err)
	}
	negotiator := xmpp.NewNegotiator(func(*xmpp.Session, *xmpp.StreamConfig) xmpp.StreamConfig {
		return xmpp.StreamConfig{Features: []xmpp.StreamFeature{
			xmpp.SASL("", u.password, sasl.Plain), xmpp.BindResource(),
		}}
	})
	sess, err := xmpp.NewSession(ctx, p.domain, u.JID, tcp, xmpp.Secure, negotiator)
	if err != nil {
		t.Fatalf("MAM session for %s: %v", u.addr, err)
	}
	defer sess.Close()
	var mu sync.Mutex
	bodies := map[string]int{}
	go func() {
		_ = sess.Serve(xmpp.HandlerFunc(func(r xmlstream.TokenReadEncoder, start *xml.StartElement) error {
			if start.Name.Local != "message" {
				return nil
			}
			var m mamResult
			if err := decodeElement(r, start, &m); err != nil {
				return err
			}
			if body := m.Result.Forwarded.Message.Body; body != "" {
				mu.Lock()
				bodies[body]++
				mu.Unlock()
			}
			return nil
		}))
	}()
	// Fetch returns after Serve has handed every result message to the handler.
	res, err := history.Fetch(ctx, history.Query{Limit: 200}, jid.JID{}, sess)
	if err != nil {
		t.Fatalf("MAM query for %s: %v", u.addr, err)
	}
	if !res.Complete {
		t.Errorf("MAM query for %s: more than one page", u.addr)
	}
	mu.Lock()
	defer mu.Unlock()
	return bodies
}
