package wire

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"unicode/utf8"
)

// Startup-phase request codes, in the place of a startup packet's protocol
// version.
const (
	CodeCancelRequest = 80877102
	CodeSSLRequest    = 80877103
	CodeGSSENCRequest = 80877104
)

// ProtocolVersion30 is the protocol version pgwarden speaks (3.0).
const ProtocolVersion30 = 3 << 16

// Param is one startup parameter.
type Param struct {
	Name, Value string
}

// Startup is a parsed startup message.
type Startup struct {
	// Major and Minor are the requested protocol version.
	Major, Minor uint16
	// Params are the parameters in the order sent. Names are unique.
	Params []Param
}

// Get returns the value of the named parameter and whether it was sent.
func (s *Startup) Get(name string) (string, bool) {
	for _, p := range s.Params {
		if p.Name == name {
			return p.Value, true
		}
	}
	return "", false
}

// ParseStartup parses a startup message (the packet after its length word,
// starting with the protocol version). It rejects truncated packets, a
// missing final terminator, duplicate or empty parameter names, and
// parameters that are not valid UTF-8.
func ParseStartup(pkt []byte) (*Startup, error) {
	if len(pkt) < 4 {
		return nil, fmt.Errorf("%w: startup packet too short", ErrMalformed)
	}
	v := binary.BigEndian.Uint32(pkt)
	s := &Startup{Major: uint16(v >> 16), Minor: uint16(v)}
	rest := pkt[4:]
	for {
		if len(rest) == 0 {
			return nil, fmt.Errorf("%w: startup packet not terminated", ErrMalformed)
		}
		if len(rest) == 1 {
			if rest[0] != 0 {
				return nil, fmt.Errorf("%w: startup packet not terminated", ErrMalformed)
			}
			return s, nil
		}
		name, after, ok := CString(rest)
		if !ok || len(name) == 0 {
			return nil, fmt.Errorf("%w: invalid startup parameter name", ErrMalformed)
		}
		value, after2, ok := CString(after)
		if !ok {
			return nil, fmt.Errorf("%w: startup parameter %q has no terminated value", ErrMalformed, name)
		}
		if !utf8.Valid(name) || !utf8.Valid(value) {
			return nil, fmt.Errorf("%w: startup parameter is not valid UTF-8", ErrMalformed)
		}
		if _, dup := s.Get(string(name)); dup {
			return nil, fmt.Errorf("%w: startup parameter %q sent twice", ErrMalformed, name)
		}
		s.Params = append(s.Params, Param{Name: string(name), Value: string(value)})
		rest = after2
	}
}

// CancelKey is the (process id, secret) pair of a CancelRequest.
type CancelKey struct {
	PID    uint32
	Secret []byte
}

// ParseCancelRequest parses a CancelRequest packet (after its length word).
// Protocol 3.0 keys are 4 bytes; 3.2 allows up to 256.
func ParseCancelRequest(pkt []byte) (CancelKey, error) {
	if len(pkt) < 12 || len(pkt) > 8+256 || binary.BigEndian.Uint32(pkt) != CodeCancelRequest {
		return CancelKey{}, fmt.Errorf("%w: invalid cancel request", ErrMalformed)
	}
	return CancelKey{PID: binary.BigEndian.Uint32(pkt[4:]), Secret: bytes.Clone(pkt[8:])}, nil
}

// RequestCode returns the code of a startup-phase packet: a protocol version
// or one of the Code* request codes.
func RequestCode(pkt []byte) uint32 {
	if len(pkt) < 4 {
		return 0
	}
	return binary.BigEndian.Uint32(pkt)
}
