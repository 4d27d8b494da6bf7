package xmpppeer

import (
	"context"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"mellium.im/sasl"
	"mellium.im/xmpp"
	"mellium.im/xmpp/stream"

	"chatconnect.dev/loadgen/internal/metrics"
	"chatconnect.dev/loadgen/internal/peer"
)

// closeWait bounds how long Close waits for the server to end its side of the stream.
const closeWait = 2 * time.Second

// conn is one logged-in XMPP client session with stream management on.
type conn struct {
	user    *User
	tcp     net.Conn
	sess    *xmpp.Session
	handler peer.Handler

	// wmu makes numbering a stanza (acks.add) and writing it one step, so the count the
	// server answers with matches ours.
	wmu  sync.Mutex
	acks acks
	ids  atomic.Uint64

	// Owned by the reader goroutine (Serve runs the handler there, one element at a time),
	// except inbound, which Close reads for its final <a/>.
	smOn    bool
	inbound atomic.Uint32 // stanzas received since <enabled/>
	enabled chan error    // the answer to <enable/>

	served    chan struct{} // closed when the reader has stopped
	closeOnce sync.Once
	closing   atomic.Bool // Close or abort began: an end after it is ours, not the server's
	endErr    error       // why the stream ended; set before served is closed
}

var (
	_ peer.Conn    = (*conn)(nil)
	_ peer.Watched = (*conn)(nil)
)

// Err is why the stream ended on its own (the server closed or reset it), or nil while
// it is open or once Close ended it.
func (c *conn) Err() error {
	select {
	case <-c.served:
		if c.closing.Load() {
			return nil
		}
		return c.endErr
	default:
		return nil
	}
}

// Connect logs user in (SASL PLAIN, resource binding), enables stream management, sends
// initial presence so messages are delivered live, and returns once the server has
// acknowledged that presence.
func (p *Peer) Connect(ctx context.Context, u peer.User, handler peer.Handler) (peer.Conn, error) {
	user, ok := u.(*User)
	if !ok {
		return nil, fmt.Errorf("xmpppeer: user %T was not provisioned by this peer", u)
	}
	var d net.Dialer
	tcp, err := d.DialContext(ctx, "tcp", p.cfg.Addr)
	if err != nil {
		return nil, &metrics.Coded{Code: "CLIENT", Reason: "dial", Msg: err.Error()}
	}
	features := []xmpp.StreamFeature{xmpp.SASL("", user.password, sasl.Plain), xmpp.BindResource()}
	negotiator := xmpp.NewNegotiator(func(*xmpp.Session, *xmpp.StreamConfig) xmpp.StreamConfig {
		return xmpp.StreamConfig{Features: features}
	})
	// The benchmark talks plain TCP on loopback (no STARTTLS, as on the ChatConnect side).
	// mellium only offers SASL on a secure stream, so the session starts marked Secure.
	sess, err := xmpp.NewSession(ctx, p.domain, user.JID, tcp, xmpp.Secure, negotiator)
	if err != nil {
		_ = tcp.Close()
		return nil, loginError(user, err)
	}
	c := &conn{
		user:    user,
		tcp:     tcp,
		sess:    sess,
		handler: handler,
		enabled: make(chan error, 1),
		served:  make(chan struct{}),
	}
	go c.serve()
	if err := c.start(ctx); err != nil {
		c.abort()
		return nil, err
	}
	return c, nil
}

// start enables stream management and goes online.
func (c *conn) start(ctx context.Context) error {
	if err := c.writeRaw(ctx, smEnable, smEnable.End()); err != nil {
		return err
	}
	select {
	case err := <-c.enabled:
		if err != nil {
			return err
		}
	case <-c.served:
		return c.acks.failure()
	case <-ctx.Done():
		return ctx.Err()
	}
	id := c.nextID()
	presence := xml.StartElement{
		Name: xml.Name{Local: "presence"},
		Attr: []xml.Attr{{Name: xml.Name{Local: "id"}, Value: id}},
	}
	return c.submit(ctx, id, presence, presence.End())
}

// Send writes a chat message with payload as its base64 body, and returns once
// ejabberd has acknowledged it (XEP-0198) and no bounce came back for it.
func (c *conn) Send(ctx context.Context, to peer.User, payload []byte) error {
	u, ok := to.(*User)
	if !ok {
		return fmt.Errorf("xmpppeer: recipient %T was not provisioned by this peer", to)
	}
	id := c.nextID()
	msg := xml.StartElement{
		Name: xml.Name{Local: "message"},
		Attr: []xml.Attr{
			{Name: xml.Name{Local: "type"}, Value: "chat"},
			{Name: xml.Name{Local: "to"}, Value: u.addr},
			{Name: xml.Name{Local: "id"}, Value: id},
		},
	}
	body := xml.StartElement{Name: xml.Name{Local: "body"}}
	text := xml.CharData(base64.StdEncoding.EncodeToString(payload))
	return c.submit(ctx, id, msg, body, text, body.End(), msg.End())
}

// submit writes one stanza and waits until the server has taken it.
func (c *conn) submit(ctx context.Context, id string, stanza ...xml.Token) error {
	c.wmu.Lock()
	p, needR, err := c.acks.add(id, true)
	if err != nil {
		c.wmu.Unlock()
		return err
	}
	if needR {
		stanza = append(stanza, smRequest, smRequest.End())
	}
	err = c.writeRaw(ctx, stanza...)
	c.wmu.Unlock()
	if err != nil {
		// A write cut short leaves half a stanza on the stream: the connection is lost.
		c.abort()
		return &metrics.Coded{Code: "CLIENT", Reason: "write", Msg: err.Error()}
	}
	select {
	case err := <-p.done:
		return err
	case <-ctx.Done():
		c.acks.abandon(p)
		return ctx.Err()
	}
}

// writeRaw writes tokens and flushes them. A context deadline bounds the write (without
// a goroutine per call, as mellium's Send would start).
func (c *conn) writeRaw(ctx context.Context, toks ...xml.Token) error {
	w := c.sess.TokenWriter()
	defer w.Close()
	// Set and cleared while holding the writer, so no other write inherits it.
	if deadline, ok := ctx.Deadline(); ok {
		_ = c.tcp.SetWriteDeadline(deadline)
		defer func() { _ = c.tcp.SetWriteDeadline(time.Time{}) }()
	}
	for _, t := range toks {
		if err := w.EncodeToken(t); err != nil {
			return err
		}
	}
	return w.Flush()
}

func (c *conn) nextID() string {
	return strconv.FormatUint(c.ids.Add(1), 36)
}

// serve runs the reader until the stream ends, then fails whatever still waits.
func (c *conn) serve() {
	err := c.sess.Serve(c)
	c.endErr = closedError(c.user, err)
	c.acks.close(c.endErr)
	_ = c.tcp.Close()
	close(c.served)
}

// Close acknowledges what arrived (so ejabberd has nothing to re-route), ends the
// stream, and waits briefly for the server to end its side.
func (c *conn) Close() error {
	c.closing.Store(true)
	c.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), closeWait)
		defer cancel()
		ack := smAnswer(c.inbound.Load())
		_ = c.writeRaw(ctx, ack, ack.End())
		_ = c.sess.Close()
		select {
		case <-c.served:
		case <-ctx.Done():
			_ = c.tcp.Close()
			<-c.served
		}
	})
	return nil
}

// abort drops the connection without a goodbye (a failed handshake or write).
func (c *conn) abort() {
	c.closing.Store(true)
	c.closeOnce.Do(func() {
		_ = c.tcp.Close()
		<-c.served
	})
}

func loginError(u *User, err error) error {
	var se stream.Error
	if errors.As(err, &se) {
		return &metrics.Coded{Code: "XMPP_STREAM", Reason: se.Err, Msg: "login " + u.addr}
	}
	return &metrics.Coded{Code: "CLIENT", Reason: "login", Msg: u.addr + ": " + err.Error()}
}

// closedError is what waiting and later Sends get once the stream is gone: a stream
// error's condition when the server sent one.
func closedError(u *User, err error) error {
	var se stream.Error
	if errors.As(err, &se) {
		return &metrics.Coded{Code: "XMPP_STREAM", Reason: se.Err, Msg: "stream of " + u.addr}
	}
	if err == nil || errors.Is(err, io.EOF) {
		err = io.EOF
	}
	return &metrics.Coded{Code: "CLIENT", Reason: "connection-closed", Msg: u.addr + ": " + err.Error()}
}
