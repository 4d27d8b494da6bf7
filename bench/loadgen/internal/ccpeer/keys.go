package ccpeer

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"math/big"

	"golang.org/x/crypto/nacl/box"

	usersv1 "chatconnect.dev/loadgen/internal/pb/chatconnect/users/v1"
)

// oneTimePrekeys is how many one-time prekeys a bench device publishes; the scenarios
// never fetch bundles (the generator plays every device and knows their keys), so a few
// keep registration cheap.
const oneTimePrekeys = 5

// deviceKeys is one device's key material, made with the same primitives as the Python
// SDK (Ed25519 identity, X25519 prekeys) so the server's checks apply unchanged.
type deviceKeys struct {
	identity       ed25519.PrivateKey
	prekeyPublic   *[32]byte
	prekeyPrivate  *[32]byte
	registrationID uint32
	oneTime        []*usersv1.PreKey
}

func newDeviceKeys() (*deviceKeys, error) {
	_, identity, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("identity key: %w", err)
	}
	public, private, err := box.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("signed prekey: %w", err)
	}
	registration, err := rand.Int(rand.Reader, big.NewInt(16380))
	if err != nil {
		return nil, err
	}
	keys := &deviceKeys{
		identity:       identity,
		prekeyPublic:   public,
		prekeyPrivate:  private,
		registrationID: uint32(registration.Int64()) + 1,
	}
	for i := 0; i < oneTimePrekeys; i++ {
		otPublic, _, err := box.GenerateKey(rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("one-time prekey: %w", err)
		}
		keys.oneTime = append(keys.oneTime, &usersv1.PreKey{KeyId: uint32(i + 1), PublicKey: otPublic[:]})
	}
	return keys, nil
}

// published is what the device uploads to the key directory at registration.
func (k *deviceKeys) published() *usersv1.DeviceKeys {
	return &usersv1.DeviceKeys{
		IdentityKey: k.identity.Public().(ed25519.PublicKey),
		SignedPrekey: &usersv1.SignedPreKey{
			KeyId:     1,
			PublicKey: k.prekeyPublic[:],
			Signature: ed25519.Sign(k.identity, k.prekeyPublic[:]),
		},
		OneTimePrekeys: k.oneTime,
	}
}

// seal encrypts a payload to this device's signed prekey: a libsodium sealed box, the
// Python SDK's envelope cipher, so the server stores nothing but ciphertext.
func (k *deviceKeys) seal(plaintext []byte) ([]byte, error) {
	return box.SealAnonymous(nil, plaintext, k.prekeyPublic, rand.Reader)
}

// open decrypts an envelope sealed to this device.
func (k *deviceKeys) open(ciphertext []byte) ([]byte, bool) {
	return box.OpenAnonymous(nil, ciphertext, k.prekeyPublic, k.prekeyPrivate)
}
