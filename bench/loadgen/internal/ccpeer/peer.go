// Package ccpeer drives ChatConnect through its public gRPC contracts (stubs generated
// from protos/): registration, the gateway's Connect stream, 1:1 and group sends.
package ccpeer

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	mathrand "math/rand/v2"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	commonv1 "chatconnect.dev/loadgen/internal/pb/chatconnect/common/v1"
	usersv1 "chatconnect.dev/loadgen/internal/pb/chatconnect/users/v1"
	"chatconnect.dev/loadgen/internal/peer"
)

// Config says where the server is and how bench accounts register.
type Config struct {
	// Target is the gateway's host:port.
	Target string
	// Name labels the peer in reports ("chatconnect-embedded").
	Name string
	// TestCode is the server's users.test_numbers_code: fictional numbers
	// (+1 NXX 555-01XX) register with it, without an SMS.
	TestCode string
	// ProvisionConcurrency bounds registrations in flight.
	ProvisionConcurrency int
	// DeliveryWindow is the unacknowledged envelopes a device asks for (0: server default).
	DeliveryWindow uint32
}

// Peer is a ChatConnect server under test.
type Peer struct {
	cfg Config
	// control is one shared connection for registration and group administration;
	// every device opens its own connection for its stream, as a phone would.
	control *grpc.ClientConn
	// numbers hands out fictional phone numbers, from a random start so that a re-run
	// against the same store does not collide with an earlier run's accounts.
	numbers atomic.Uint64
}

// User is one registered account with its single (primary) device.
type User struct {
	UserID   string
	DeviceID uint32
	token    string
	keys     *deviceKeys
}

// Address is the user id.
func (u *User) Address() string { return u.UserID }

// New dials the control connection (lazily: nothing is sent until the first call).
func New(cfg Config) (*Peer, error) {
	if cfg.ProvisionConcurrency <= 0 {
		cfg.ProvisionConcurrency = 16
	}
	control, err := grpc.NewClient(cfg.Target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", cfg.Target, err)
	}
	p := &Peer{cfg: cfg, control: control}
	p.numbers.Store(mathrand.Uint64N(70_000))
	return p, nil
}

// Name labels the peer in reports.
func (p *Peer) Name() string { return p.cfg.Name }

// Provision registers n accounts, cfg.ProvisionConcurrency at a time.
func (p *Peer) Provision(ctx context.Context, n int, progress func(int)) ([]peer.User, error) {
	users, err := peer.ProvisionAll(ctx, n, p.cfg.ProvisionConcurrency, progress,
		func(ctx context.Context, _ int) (peer.User, error) { return p.register(ctx) })
	if err != nil {
		return nil, fmt.Errorf("registering bench accounts: %w", err)
	}
	return users, nil
}

// fictionalNumber is the n-th number of the +1 NXX 555-01XX range (80,000 of them).
func fictionalNumber(n uint64) string {
	n %= 80_000
	return fmt.Sprintf("+1%d55501%02d", 200+n/100, n%100)
}

func (p *Peer) register(ctx context.Context) (*User, error) {
	keys, err := newDeviceKeys()
	if err != nil {
		return nil, err
	}
	stub := usersv1.NewUsersServiceClient(p.control)
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	started, err := stub.StartVerification(ctx, &usersv1.StartVerificationRequest{
		RequestId:   requestID(),
		PhoneNumber: fictionalNumber(p.numbers.Add(1)),
		Locale:      "en",
	})
	if err != nil {
		return nil, fmt.Errorf("StartVerification: %w", err)
	}
	done, err := stub.CompleteRegistration(ctx, &usersv1.CompleteRegistrationRequest{
		RequestId:      requestID(),
		VerificationId: started.GetVerificationId(),
		Code:           p.cfg.TestCode,
		RegistrationId: keys.registrationID,
		Kind:           commonv1.DeviceKind_DEVICE_KIND_PHONE,
		Keys:           keys.published(),
	})
	if err != nil {
		return nil, fmt.Errorf("CompleteRegistration: %w", err)
	}
	return &User{
		UserID:   done.GetUserId(),
		DeviceID: done.GetSession().GetDevice().GetDeviceId(),
		token:    done.GetSession().GetAccessToken(),
		keys:     keys,
	}, nil
}

func requestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
