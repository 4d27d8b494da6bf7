package ccpeer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"chatconnect.dev/loadgen/internal/metrics"
	commonv1 "chatconnect.dev/loadgen/internal/pb/chatconnect/common/v1"
	gatewayv1 "chatconnect.dev/loadgen/internal/pb/chatconnect/gateway/v1"
	routerv1 "chatconnect.dev/loadgen/internal/pb/chatconnect/router/v1"
	"chatconnect.dev/loadgen/internal/peer"
)

const (
	// ackBatch and ackCoalesce match the Python SDK: acknowledgements go out in batches.
	ackBatch    = 64
	ackCoalesce = 5 * time.Millisecond
	// connBufferBytes keeps each device's HTTP/2 buffers small: the idle scenario holds
	// 10,000 devices in one generator process.
	connBufferBytes = 16 << 10
)

// ErrEnded is returned by sends on a stream that has ended.
var ErrEnded = errors.New("stream ended")

// Conn is one device's Connect stream.
type Conn struct {
	peer    *Peer
	user    *User
	cc      *grpc.ClientConn
	stream  gatewayv1.GatewayService_ConnectClient
	cancel  context.CancelFunc
	handler peer.Handler

	writeMu sync.Mutex
	pendMu  sync.Mutex
	pending map[string]chan error
	acks    chan string

	shardEpoch uint64
	// Welcomed is how long from dialling to the server's Welcome.
	Welcomed time.Duration
	// Drained is closed when the server says the stored backlog has been delivered.
	Drained chan struct{}
	ended   chan struct{}
	endErr  error
	endOnce sync.Once
}

// Connect opens user's stream, sends Hello and waits for Welcome within ctx.
func (p *Peer) Connect(ctx context.Context, u peer.User, handler peer.Handler) (peer.Conn, error) {
	return p.ConnectDevice(ctx, u.(*User), handler)
}

// ConnectDevice is Connect with ChatConnect's own types.
func (p *Peer) ConnectDevice(ctx context.Context, user *User, handler peer.Handler) (*Conn, error) {
	started := time.Now()
	cc, err := grpc.NewClient(p.cfg.Target,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithReadBufferSize(connBufferBytes),
		grpc.WithWriteBufferSize(connBufferBytes),
	)
	if err != nil {
		return nil, err
	}
	streamCtx, cancel := context.WithCancel(metadata.AppendToOutgoingContext(
		context.Background(), "authorization", "Bearer "+user.token))
	c := &Conn{
		peer: p, user: user, cc: cc, cancel: cancel, handler: handler,
		pending: map[string]chan error{}, acks: make(chan string, 4*ackBatch),
		Drained: make(chan struct{}), ended: make(chan struct{}),
	}
	// The handshake obeys ctx; the stream itself lives until Close.
	stop := context.AfterFunc(ctx, cancel)
	defer stop()
	stream, err := gatewayv1.NewGatewayServiceClient(cc).Connect(streamCtx)
	if err == nil {
		err = stream.Send(&gatewayv1.ConnectRequest{Frame: &gatewayv1.ConnectRequest_Hello{Hello: &gatewayv1.Hello{
			Kind: commonv1.DeviceKind_DEVICE_KIND_PHONE, DeliveryWindow: p.cfg.DeliveryWindow,
			UserAgent: "chatconnect-loadgen-go/0.1",
		}}})
	}
	var first *gatewayv1.ConnectResponse
	if err == nil {
		first, err = stream.Recv()
	}
	if err == nil && first.GetWelcome() == nil {
		err = fmt.Errorf("first frame is %T, not Welcome", first.GetFrame())
	}
	if err != nil {
		cancel()
		_ = cc.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	c.stream = stream
	c.shardEpoch = first.GetWelcome().GetShardEpoch()
	c.Welcomed = time.Since(started)
	go c.read()
	go c.flushAcks()
	if interval := first.GetWelcome().GetPingInterval().AsDuration(); interval > 0 {
		go c.ping(interval)
	}
	return c, nil
}

// Ended is closed when the stream ends; Err then says why.
func (c *Conn) Ended() <-chan struct{} { return c.ended }

// Err is why the stream ended (nil while it is open or after Close).
func (c *Conn) Err() error {
	select {
	case <-c.ended:
		return c.endErr
	default:
		return nil
	}
}

// Close ends the stream and the connection.
func (c *Conn) Close() error {
	c.end(nil)
	return c.cc.Close()
}

func (c *Conn) end(err error) {
	c.endOnce.Do(func() {
		c.endErr = err
		c.cancel()
		close(c.ended)
		c.pendMu.Lock()
		for cmid, ch := range c.pending {
			ch <- ErrEnded
			delete(c.pending, cmid)
		}
		c.pendMu.Unlock()
	})
}

func (c *Conn) write(req *gatewayv1.ConnectRequest) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	return c.stream.Send(req)
}

func (c *Conn) read() {
	for {
		frame, err := c.stream.Recv()
		if err != nil {
			c.end(err)
			return
		}
		switch f := frame.GetFrame().(type) {
		case *gatewayv1.ConnectResponse_Envelope:
			c.onEnvelope(f.Envelope)
		case *gatewayv1.ConnectResponse_Sent:
			c.settle(f.Sent.GetClientMessageId(), nil)
		case *gatewayv1.ConnectResponse_SendFailed:
			e := f.SendFailed.GetError()
			c.settle(f.SendFailed.GetClientMessageId(), &metrics.Coded{
				Code: metrics.CanonicalCode(codes.Code(e.GetCode())), Reason: e.GetReason(), Msg: e.GetMessage(),
			})
		case *gatewayv1.ConnectResponse_Drained:
			select {
			case <-c.Drained:
			default:
				close(c.Drained)
			}
		case *gatewayv1.ConnectResponse_GoAway:
			c.end(&metrics.Coded{Code: "GO_AWAY", Reason: f.GoAway.GetReason()})
			return
		}
	}
}

func (c *Conn) onEnvelope(env *commonv1.Envelope) {
	c.acks <- env.GetServerMessageId()
	var (
		plaintext []byte
		ok        bool
	)
	at := time.Now()
	switch env.GetType() {
	case commonv1.EnvelopeType_ENVELOPE_TYPE_CIPHERTEXT:
		plaintext, ok = c.user.keys.open(env.GetContent())
	case commonv1.EnvelopeType_ENVELOPE_TYPE_SENDER_KEY_CIPHERTEXT:
		plaintext, ok = c.peer.openGroup(env.GetDestination().GetGroupId(), env.GetContent())
	default:
		return // receipts and notices are not messages
	}
	if ok {
		c.handler(peer.Delivery{Payload: plaintext, At: at})
	}
}

func (c *Conn) flushAcks() {
	batch := make([]string, 0, ackBatch)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	flush := func() {
		if len(batch) > 0 {
			ids := append([]string(nil), batch...)
			batch = batch[:0]
			_ = c.write(&gatewayv1.ConnectRequest{Frame: &gatewayv1.ConnectRequest_Ack{Ack: &gatewayv1.Ack{Ids: ids}}})
		}
	}
	for {
		select {
		case <-c.ended:
			return
		case id := <-c.acks:
			if len(batch) == 0 {
				timer.Reset(ackCoalesce)
			}
			batch = append(batch, id)
			if len(batch) >= ackBatch {
				timer.Stop()
				flush()
			}
		case <-timer.C:
			flush()
		}
	}
}

// ping keeps an idle stream open: the server closes one that is silent for twice the
// interval its Welcome names.
func (c *Conn) ping(interval time.Duration) {
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	var nonce uint64
	for {
		select {
		case <-c.ended:
			return
		case <-ticker.C:
			nonce++
			_ = c.write(&gatewayv1.ConnectRequest{Frame: &gatewayv1.ConnectRequest_Ping{Ping: &gatewayv1.Ping{Nonce: nonce}}})
		}
	}
}

func (c *Conn) settle(cmid string, err error) {
	c.pendMu.Lock()
	ch, ok := c.pending[cmid]
	delete(c.pending, cmid)
	c.pendMu.Unlock()
	if ok {
		ch <- err
	}
}

// Send seals payload to the recipient's device and waits for the server's durable `sent`.
func (c *Conn) Send(ctx context.Context, to peer.User, payload []byte) error {
	recipient := to.(*User)
	content, err := recipient.keys.seal(payload)
	if err != nil {
		return err
	}
	return c.submit(ctx, &routerv1.OutgoingMessage{
		Destination: &commonv1.ConversationRef{Target: &commonv1.ConversationRef_UserId{UserId: recipient.UserID}},
		Ciphertexts: []*routerv1.DeviceCiphertext{{
			Device:         &commonv1.DeviceAddress{UserId: recipient.UserID, DeviceId: recipient.DeviceID},
			RegistrationId: recipient.keys.registrationID,
			Type:           commonv1.EnvelopeType_ENVELOPE_TYPE_CIPHERTEXT,
			Content:        content,
		}},
	})
}

func (c *Conn) submit(ctx context.Context, out *routerv1.OutgoingMessage) error {
	out.ClientMessageId = requestID()
	out.ShardEpoch = c.shardEpoch
	done := make(chan error, 1)
	c.pendMu.Lock()
	select {
	case <-c.ended:
		c.pendMu.Unlock()
		return ErrEnded
	default:
	}
	c.pending[out.ClientMessageId] = done
	c.pendMu.Unlock()
	if err := c.write(&gatewayv1.ConnectRequest{Frame: &gatewayv1.ConnectRequest_Send{Send: out}}); err != nil {
		c.settle(out.ClientMessageId, err)
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		c.settle(out.ClientMessageId, ctx.Err())
		return ctx.Err()
	}
}
