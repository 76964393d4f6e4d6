package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// ProtocolMaxBody is the largest message body PostgreSQL itself accepts or
// produces (MaxAllocSize - 1). A declared length above it can only be an
// attack or garbage.
const ProtocolMaxBody = 0x3fffffff - 1

// MaxStartupPacket is PostgreSQL's limit on the startup packet
// (MAX_STARTUP_PACKET_LENGTH), length word included.
const MaxStartupPacket = 10000

// initialBuffer is the read buffer a Reader starts with and shrinks back to
// after a large message.
const initialBuffer = 16 << 10

// Message is one protocol message as read. Raw is the whole frame (type
// byte, length word and body), ready to be forwarded; Body is the part after
// the length word. Both alias the Reader's buffer and are only valid until
// the next call to Next or ReadStartup.
type Message struct {
	Type byte
	Body []byte
	Raw  []byte
}

// ErrMalformed means a peer sent bytes that are not a valid message.
var ErrMalformed = errors.New("malformed protocol message")

// TooLargeError means a peer declared a message longer than the Reader
// accepts. Nothing was allocated for it.
type TooLargeError struct {
	// Type is the message type (0 for a startup packet).
	Type byte
	// Length is the declared body length.
	Length int64
	// Max is the limit that was exceeded.
	Max int
}

// Error says which message was too large, and the limit.
func (e *TooLargeError) Error() string {
	if e.Type == 0 {
		return fmt.Sprintf("startup packet of %d bytes exceeds the limit of %d", e.Length, e.Max)
	}
	return fmt.Sprintf("message %q of %d bytes exceeds the limit of %d", e.Type, e.Length, e.Max)
}

// BeyondProtocol reports whether the declared length is beyond anything
// PostgreSQL accepts (rather than only beyond a configured limit).
func (e *TooLargeError) BeyondProtocol() bool { return e.Length > ProtocolMaxBody }

// Reader reads protocol messages from an untrusted stream. It is not safe
// for concurrent use.
type Reader struct {
	src     io.Reader
	buf     []byte
	r, w    int // unread bytes are buf[r:w]
	maxBody int
}

// NewReader returns a Reader of src that refuses message bodies longer than
// maxBody bytes (ProtocolMaxBody when maxBody is not positive or larger).
func NewReader(src io.Reader, maxBody int) *Reader {
	if maxBody <= 0 || maxBody > ProtocolMaxBody {
		maxBody = ProtocolMaxBody
	}
	return &Reader{src: src, buf: make([]byte, initialBuffer), maxBody: maxBody}
}

// SetMaxBody changes the largest message body the Reader accepts (see
// NewReader).
func (r *Reader) SetMaxBody(maxBody int) {
	if maxBody <= 0 || maxBody > ProtocolMaxBody {
		maxBody = ProtocolMaxBody
	}
	r.maxBody = maxBody
}

// Reset makes the Reader read from src from now on. It fails if bytes read
// from the previous source are still buffered: after an SSLRequest that is
// plaintext injected before the TLS handshake, and must be refused.
func (r *Reader) Reset(src io.Reader) error {
	if r.Buffered() != 0 {
		return fmt.Errorf("%w: %d unencrypted bytes received before the TLS handshake", ErrMalformed, r.Buffered())
	}
	r.src = src
	return nil
}

// SetSource makes the Reader read the rest of the same stream from src,
// keeping what it has buffered: for a stream whose transport is taken over
// (see internal/evloop), never for a new stream (see Reset).
func (r *Reader) SetSource(src io.Reader) { r.src = src }

// Buffered returns the number of bytes read from the source but not yet
// returned.
func (r *Reader) Buffered() int { return r.w - r.r }

// MessageReady reports whether a whole message is buffered, so that Next will
// not block. The proxy flushes its pending writes when it is false, before it
// waits for the peer.
func (r *Reader) MessageReady() bool {
	if r.w-r.r < 5 {
		return false
	}
	n := int64(binary.BigEndian.Uint32(r.buf[r.r+1:]))
	return n < 4 || int64(r.w-r.r) >= n+1 || n-4 > int64(r.maxBody)
}

// Next reads the next message. Errors: io.EOF when the stream ends cleanly
// between messages, io.ErrUnexpectedEOF inside one, a *TooLargeError, an
// error wrapping ErrMalformed, or the source's error.
func (r *Reader) Next() (Message, error) {
	if err := r.fill(5); err != nil {
		return Message{}, err
	}
	typ := r.buf[r.r]
	n := int64(binary.BigEndian.Uint32(r.buf[r.r+1:]))
	if n < 4 {
		return Message{}, fmt.Errorf("%w: message %q declares length %d", ErrMalformed, typ, n)
	}
	body := n - 4
	if body > int64(r.maxBody) {
		return Message{}, &TooLargeError{Type: typ, Length: body, Max: r.maxBody}
	}
	total := 5 + int(body)
	if err := r.fill(total); err != nil {
		return Message{}, err
	}
	raw := r.buf[r.r : r.r+total : r.r+total]
	r.r += total
	return Message{Type: typ, Body: raw[5:], Raw: raw}, nil
}

// ReadStartup reads a startup-phase packet (startup message, SSLRequest,
// GSSENCRequest or CancelRequest), which has a length word but no type byte,
// and returns the packet after the length word.
func (r *Reader) ReadStartup() ([]byte, error) {
	if err := r.fill(4); err != nil {
		return nil, err
	}
	n := int64(binary.BigEndian.Uint32(r.buf[r.r:]))
	if n < 8 {
		return nil, fmt.Errorf("%w: startup packet declares length %d", ErrMalformed, n)
	}
	if n > MaxStartupPacket {
		return nil, &TooLargeError{Length: n, Max: MaxStartupPacket}
	}
	if err := r.fill(int(n)); err != nil {
		return nil, err
	}
	pkt := r.buf[r.r+4 : r.r+int(n) : r.r+int(n)]
	r.r += int(n)
	return pkt, nil
}

// fill makes sure at least n bytes are buffered, reading from the source as
// needed. The buffer grows with what arrives, never with what was declared.
func (r *Reader) fill(n int) error {
	if r.r == r.w && len(r.buf) > 4*initialBuffer {
		// Drop a buffer grown for a large message once it is drained.
		r.buf = make([]byte, initialBuffer)
		r.r, r.w = 0, 0
	}
	for r.w-r.r < n {
		if r.w == len(r.buf) {
			r.makeRoom(n)
		}
		m, err := r.src.Read(r.buf[r.w:])
		r.w += m
		if err != nil {
			if r.w-r.r >= n {
				return nil
			}
			if errors.Is(err, io.EOF) && r.w != r.r {
				return io.ErrUnexpectedEOF
			}
			return err
		}
	}
	return nil
}

// makeRoom frees space at the end of the buffer for a message of n bytes:
// it moves unread bytes to the front, and if that is not enough, at most
// doubles the buffer (capped at n).
func (r *Reader) makeRoom(n int) {
	unread := r.w - r.r
	if r.r > 0 && len(r.buf)-unread >= min(n-unread, initialBuffer) {
		copy(r.buf, r.buf[r.r:r.w])
		r.r, r.w = 0, unread
		return
	}
	size := max(min(2*len(r.buf), n), unread+1)
	grown := make([]byte, size)
	copy(grown, r.buf[r.r:r.w])
	r.buf = grown
	r.r, r.w = 0, unread
}
