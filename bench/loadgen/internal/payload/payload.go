// Package payload is the plaintext every scenario sends: a message id that is unique in
// the run, and the send time on the generator's clock (senders and receivers share one
// process, so one clock measures send→deliver).
package payload

import (
	"encoding/binary"
	"errors"
	"time"
)

// HeaderSize is the bytes the id and timestamp take; the rest is padding.
const HeaderSize = 16

// ErrShort reports a payload too short to carry a header.
var ErrShort = errors.New("payload shorter than its header")

// Encode returns size bytes (at least HeaderSize) carrying id and sentAt.
func Encode(id uint64, sentAt time.Time, size int) []byte {
	if size < HeaderSize {
		size = HeaderSize
	}
	out := make([]byte, size)
	binary.BigEndian.PutUint64(out[0:8], id)
	binary.BigEndian.PutUint64(out[8:16], uint64(sentAt.UnixNano()))
	for i := HeaderSize; i < size; i++ {
		out[i] = byte('a' + i%26)
	}
	return out
}

// Decode returns the id and send time a payload carries.
func Decode(p []byte) (id uint64, sentAt time.Time, err error) {
	if len(p) < HeaderSize {
		return 0, time.Time{}, ErrShort
	}
	id = binary.BigEndian.Uint64(p[0:8])
	sentAt = time.Unix(0, int64(binary.BigEndian.Uint64(p[8:16])))
	return id, sentAt, nil
}
