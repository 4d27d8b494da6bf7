// Package peer is what every server under test offers a scenario: users to provision,
// and connections that send and receive opaque payloads. ChatConnect (ccpeer) and the
// XMPP peer (xmpppeer, ejabberd) implement it, so one scenario drives both the same way.
package peer

import (
	"context"
	"time"
)

// A User is one provisioned account that a scenario can connect as and send to.
// Each peer keeps its own credentials behind it.
type User interface {
	// Address names the user in reports and errors (a user id, a JID).
	Address() string
}

// A Delivery is one message as the receiving connection got it.
type Delivery struct {
	Payload []byte
	// At is when the connection read it, before any acknowledgement.
	At time.Time
}

// Handler receives every delivery of one connection. It runs on the connection's reader
// and must not block.
type Handler func(Delivery)

// Peer is a server under test.
type Peer interface {
	// Name is the server's name in reports ("chatconnect-embedded", "ejabberd").
	Name() string
	// Provision creates n fresh users in bulk, calling progress with the count done.
	Provision(ctx context.Context, n int, progress func(done int)) ([]User, error)
	// Connect opens user's connection, completes the handshake (the server's welcome, or
	// XMPP session established), and hands every later delivery to handler.
	Connect(ctx context.Context, user User, handler Handler) (Conn, error)
}

// Conn is one connected device.
type Conn interface {
	// Send sends payload to one user and returns once the server has accepted it:
	// ChatConnect's durable `sent`; for XMPP the stream-management ack (XEP-0198) of a
	// server with message archiving on. Safe to call from many goroutines. The error
	// carries a gRPC status where there is one (see metrics.Code).
	Send(ctx context.Context, to User, payload []byte) error
	// Close ends the connection.
	Close() error
}

// Watched is a Conn that can say whether its stream ended on its own (reset, cancelled,
// told to go away) rather than by Close. The storm and idle scenarios count those.
type Watched interface {
	// Err is why the connection ended, or nil while it is open or after Close.
	Err() error
}

// A Group is a group conversation created for a scenario.
type Group interface {
	// GroupID names the group in reports.
	GroupID() string
}

// GroupPeer is a Peer with group conversations (workload b).
type GroupPeer interface {
	Peer
	// CreateGroup makes owner create a group holding owner and members.
	CreateGroup(ctx context.Context, owner User, members []User) (Group, error)
}

// GroupConn is a Conn that can send to a group.
type GroupConn interface {
	Conn
	// SendGroup sends payload to every member of g and returns once the server
	// accepted it (as Send).
	SendGroup(ctx context.Context, g Group, payload []byte) error
}
