package ccpeer

import (
	"context"
	"crypto/rand"
	"fmt"
	"sync"

	"golang.org/x/crypto/nacl/secretbox"
	"google.golang.org/grpc/metadata"

	commonv1 "chatconnect.dev/loadgen/internal/pb/chatconnect/common/v1"
	groupsv1 "chatconnect.dev/loadgen/internal/pb/chatconnect/groups/v1"
	routerv1 "chatconnect.dev/loadgen/internal/pb/chatconnect/router/v1"
	"chatconnect.dev/loadgen/internal/peer"
)

// addBatch is how many users one AddMembers call names (within groups.max_users_per_request).
const addBatch = 500

// Group is a group created for a scenario, with the sender key its messages are sealed
// with. A real client distributes its sender key to every member device once, sealed
// to each device (the Python SDK does); the generator plays every member in one
// process, so it keeps the key in memory instead. The server sees ciphertext either way.
type Group struct {
	ID                string
	MembershipVersion uint64
	key               [32]byte
}

var groupKeys sync.Map // group id → *[32]byte

func (p *Peer) openGroup(groupID string, content []byte) ([]byte, bool) {
	key, ok := groupKeys.Load(groupID)
	if !ok || len(content) < 24 {
		return nil, false
	}
	var nonce [24]byte
	copy(nonce[:], content[:24])
	return secretbox.Open(nil, content[24:], &nonce, key.(*[32]byte))
}

// GroupID is the server's group id.
func (g *Group) GroupID() string { return g.ID }

// CreateGroup makes owner create a group and add members in batches.
func (p *Peer) CreateGroup(ctx context.Context, ownerUser peer.User, members []peer.User) (peer.Group, error) {
	owner := ownerUser.(*User)
	ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+owner.token)
	stub := groupsv1.NewGroupsServiceClient(p.control)
	created, err := stub.CreateGroup(ctx, &groupsv1.CreateGroupRequest{
		RequestId: requestID(),
		Info:      &groupsv1.GroupInfo{EncryptedTitle: []byte("loadgen")},
	})
	if err != nil {
		return nil, fmt.Errorf("CreateGroup: %w", err)
	}
	g := &Group{ID: created.GetGroup().GetGroupId(), MembershipVersion: created.GetGroup().GetMembershipVersion()}
	for start := 0; start < len(members); start += addBatch {
		ids := make([]string, 0, addBatch)
		for _, m := range members[start:min(start+addBatch, len(members))] {
			ids = append(ids, m.Address())
		}
		added, err := stub.AddMembers(ctx, &groupsv1.AddMembersRequest{RequestId: requestID(), GroupId: g.ID, UserIds: ids})
		if err != nil {
			return nil, fmt.Errorf("AddMembers: %w", err)
		}
		if n := len(added.GetNotAdded()); n > 0 {
			return nil, fmt.Errorf("AddMembers: %d users not added (first: %v)", n, added.GetNotAdded()[0])
		}
		g.MembershipVersion = added.GetGroup().GetMembershipVersion()
	}
	if _, err := rand.Read(g.key[:]); err != nil {
		return nil, err
	}
	groupKeys.Store(g.ID, &g.key)
	return g, nil
}

// SendGroup encrypts payload once with the group's sender key and sends it to the group.
func (c *Conn) SendGroup(ctx context.Context, group peer.Group, payload []byte) error {
	g := group.(*Group)
	var nonce [24]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return err
	}
	content := secretbox.Seal(nonce[:], payload, &nonce, &g.key)
	return c.submit(ctx, &routerv1.OutgoingMessage{
		Destination:            &commonv1.ConversationRef{Target: &commonv1.ConversationRef_GroupId{GroupId: g.ID}},
		GroupMembershipVersion: g.MembershipVersion,
		GroupContent:           content,
	})
}
