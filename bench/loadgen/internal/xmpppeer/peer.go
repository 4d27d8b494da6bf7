// Package xmpppeer drives ejabberd (or any XMPP server with the same extensions) as a
// benchmark peer: users registered in bulk over ejabberd's mod_http_api, and client
// connections that log in with SASL PLAIN, enable stream management (XEP-0198) and send
// and receive one-to-one chat messages.
//
// The XMPP stream, SASL and resource binding come from mellium.im/xmpp. That library has
// no stream management, so this package adds the part a load generator needs (enable,
// counting stanzas, <r/> and <a/>) on top of the session's raw token reader and writer.
package xmpppeer

import (
	"net/http"
	"time"

	"mellium.im/xmpp/jid"

	"chatconnect.dev/loadgen/internal/peer"
)

// Config says where ejabberd is (tools/peerenv prints these as PEERENV_*).
type Config struct {
	// Addr is the c2s listener's host:port (PEERENV_XMPP_ADDR).
	Addr string
	// Domain is the virtual host users live on (PEERENV_XMPP_DOMAIN).
	Domain string
	// APIURL is mod_http_api's base URL, e.g. http://127.0.0.1:5380/api (PEERENV_API_URL).
	APIURL string
	// ProvisionConcurrency bounds registrations in flight (default 16).
	ProvisionConcurrency int
}

// Peer is an XMPP server under test.
type Peer struct {
	cfg    Config
	domain jid.JID
	http   *http.Client
}

var _ peer.Peer = (*Peer)(nil)

// New returns a peer for the server cfg describes. Nothing is dialled until Provision or
// Connect; a malformed Domain surfaces there.
func New(cfg Config) *Peer {
	if cfg.ProvisionConcurrency <= 0 {
		cfg.ProvisionConcurrency = 16
	}
	domain, _ := jid.New("", cfg.Domain, "")
	transport := &http.Transport{
		// One kept-alive connection per registering worker: ejabberd_http serves
		// keep-alive, and a fresh TCP connection per user would dominate the cost.
		MaxIdleConnsPerHost: cfg.ProvisionConcurrency,
		MaxConnsPerHost:     cfg.ProvisionConcurrency,
		IdleConnTimeout:     30 * time.Second,
	}
	return &Peer{
		cfg:    cfg,
		domain: domain,
		http:   &http.Client{Transport: transport, Timeout: 60 * time.Second},
	}
}

// Name labels the peer in reports.
func (p *Peer) Name() string { return "ejabberd" }

// User is one registered account.
type User struct {
	// JID is the bare address (local@domain) messages are sent to.
	JID      jid.JID
	addr     string // JID as a string, written into every message to this user
	password string
}

// Address is the bare JID.
func (u *User) Address() string { return u.addr }
