package wire

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// CString splits a NUL-terminated string off the front of b. ok is false
// when b has no NUL.
func CString(b []byte) (s, rest []byte, ok bool) {
	i := bytes.IndexByte(b, 0)
	if i < 0 {
		return nil, b, false
	}
	return b[:i], b[i+1:], true
}

// QueryText returns the SQL of a Query message body: one NUL-terminated
// string with no NUL inside and nothing after.
func QueryText(body []byte) (string, error) {
	s, rest, ok := CString(body)
	if !ok || len(rest) != 0 {
		return "", fmt.Errorf("%w: invalid Query message", ErrMalformed)
	}
	return string(s), nil
}

// Parse is the part of a Parse message the proxy needs.
type Parse struct {
	Name  string
	Query string
	// ParamTypes are the parameter type OIDs the client declared (0:
	// unspecified).
	ParamTypes []uint32
}

// ParseMessage decodes a Parse message body and checks its parameter-type
// list.
func ParseMessage(body []byte) (Parse, error) {
	name, rest, ok1 := CString(body)
	query, rest, ok2 := CString(rest)
	if !ok1 || !ok2 || len(rest) < 2 {
		return Parse{}, fmt.Errorf("%w: invalid Parse message", ErrMalformed)
	}
	n := int(binary.BigEndian.Uint16(rest))
	if len(rest) != 2+4*n {
		return Parse{}, fmt.Errorf("%w: invalid Parse parameter types", ErrMalformed)
	}
	var types []uint32
	if n > 0 {
		types = make([]uint32, n)
		for i := range types {
			types[i] = binary.BigEndian.Uint32(rest[2+4*i:])
		}
	}
	return Parse{Name: string(name), Query: string(query), ParamTypes: types}, nil
}

// BindNames returns the portal and statement names of a Bind message
// body, without decoding its parameters (the server checks those). The
// names alias body.
func BindNames(body []byte) (portal, statement []byte, err error) {
	p, rest, ok1 := CString(body)
	st, _, ok2 := CString(rest)
	if !ok1 || !ok2 {
		return nil, nil, fmt.Errorf("%w: invalid Bind message", ErrMalformed)
	}
	return p, st, nil
}

// BindParam is one parameter of a Bind message.
type BindParam struct {
	Value  []byte // nil for NULL; aliases the message body
	Binary bool
}

// errInvalidBind is BindParams' error (built once: Binds are on the hot
// path).
var errInvalidBind = fmt.Errorf("%w: invalid Bind message", ErrMalformed)

// BindParams decodes the parameters of a Bind message body, appending them
// to dst. The values alias body. It checks every length against the body,
// so a malformed message is an error, never a panic or a large allocation.
func BindParams(dst []BindParam, body []byte) ([]BindParam, error) {
	bad := errInvalidBind
	_, rest, ok1 := CString(body)
	_, rest, ok2 := CString(rest)
	if !ok1 || !ok2 || len(rest) < 2 {
		return dst, bad
	}
	nf := int(binary.BigEndian.Uint16(rest))
	rest = rest[2:]
	if len(rest) < 2*nf+2 {
		return dst, bad
	}
	formats := rest[:2*nf]
	rest = rest[2*nf:]
	np := int(binary.BigEndian.Uint16(rest))
	rest = rest[2:]
	if nf > 1 && nf != np {
		return dst, bad
	}
	for i := range np {
		if len(rest) < 4 {
			return dst, bad
		}
		n := int32(binary.BigEndian.Uint32(rest))
		rest = rest[4:]
		var p BindParam
		switch {
		case nf == 1:
			p.Binary = binary.BigEndian.Uint16(formats) == 1
		case nf > 1:
			p.Binary = binary.BigEndian.Uint16(formats[2*i:]) == 1
		}
		switch {
		case n == -1:
		case n < 0 || int(n) > len(rest):
			return dst, bad
		default:
			p.Value = rest[:n:n]
			rest = rest[n:]
		}
		dst = append(dst, p)
	}
	if len(rest) < 2 {
		return dst, bad
	}
	nr := int(binary.BigEndian.Uint16(rest))
	if len(rest) != 2+2*nr {
		return dst, bad
	}
	return dst, nil
}

// ExecutePortal returns the portal name of an Execute message body; it
// aliases body.
func ExecutePortal(body []byte) ([]byte, error) {
	p, rest, ok := CString(body)
	if !ok || len(rest) != 4 {
		return nil, fmt.Errorf("%w: invalid Execute message", ErrMalformed)
	}
	return p, nil
}

// Target decodes a Describe or Close body: the kind ('S' statement or 'P'
// portal) and the name.
func Target(body []byte) (kind byte, name string, err error) {
	if len(body) < 2 || (body[0] != 'S' && body[0] != 'P') {
		return 0, "", fmt.Errorf("%w: invalid Describe/Close target", ErrMalformed)
	}
	n, rest, ok := CString(body[1:])
	if !ok || len(rest) != 0 {
		return 0, "", fmt.Errorf("%w: invalid Describe/Close name", ErrMalformed)
	}
	return body[0], string(n), nil
}

// FunctionOID returns the function a FunctionCall message calls, checking
// the message's structure.
func FunctionOID(body []byte) (uint32, error) {
	if len(body) < 8 {
		return 0, fmt.Errorf("%w: invalid FunctionCall message", ErrMalformed)
	}
	oid := binary.BigEndian.Uint32(body)
	p := 4
	nf := int(binary.BigEndian.Uint16(body[p:]))
	p += 2 + 2*nf
	if p+2 > len(body) {
		return 0, fmt.Errorf("%w: invalid FunctionCall formats", ErrMalformed)
	}
	na := int(binary.BigEndian.Uint16(body[p:]))
	p += 2
	for range na {
		if p+4 > len(body) {
			return 0, fmt.Errorf("%w: invalid FunctionCall arguments", ErrMalformed)
		}
		l := int32(binary.BigEndian.Uint32(body[p:]))
		p += 4
		if l == -1 {
			continue
		}
		if l < 0 || int(l) > len(body)-p {
			return 0, fmt.Errorf("%w: invalid FunctionCall argument length", ErrMalformed)
		}
		p += int(l)
	}
	if p+2 != len(body) {
		return 0, fmt.Errorf("%w: invalid FunctionCall result format", ErrMalformed)
	}
	return oid, nil
}

// ValidateDataRow checks a DataRow body: a column count, then for each
// column a length of -1 (NULL) or a length that fits in what remains, and
// nothing after the last column. Upstream bytes are untrusted: a row that
// fails is never forwarded.
func ValidateDataRow(body []byte) error {
	if len(body) < 2 {
		return fmt.Errorf("%w: DataRow too short", ErrMalformed)
	}
	n := int(binary.BigEndian.Uint16(body))
	p := 2
	for range n {
		if len(body)-p < 4 {
			return fmt.Errorf("%w: DataRow truncated", ErrMalformed)
		}
		l := int32(binary.BigEndian.Uint32(body[p:]))
		p += 4
		if l == -1 {
			continue
		}
		if l < 0 || int(l) > len(body)-p {
			return fmt.Errorf("%w: DataRow column length %d", ErrMalformed, l)
		}
		p += int(l)
	}
	if p != len(body) {
		return fmt.Errorf("%w: DataRow has %d trailing bytes", ErrMalformed, len(body)-p)
	}
	return nil
}

// ReadyStatus returns the transaction status of a ReadyForQuery body: 'I'
// idle, 'T' in a transaction block, 'E' in a failed one.
func ReadyStatus(body []byte) (byte, error) {
	if len(body) != 1 || (body[0] != 'I' && body[0] != 'T' && body[0] != 'E') {
		return 0, fmt.Errorf("%w: invalid ReadyForQuery", ErrMalformed)
	}
	return body[0], nil
}

// CommandTag returns the tag of a CommandComplete body.
func CommandTag(body []byte) ([]byte, error) {
	s, rest, ok := CString(body)
	if !ok || len(rest) != 0 {
		return nil, fmt.Errorf("%w: invalid CommandComplete", ErrMalformed)
	}
	return s, nil
}

// ErrorFields returns the severity (non-localised when the server sent it),
// SQLSTATE and message of an ErrorResponse or NoticeResponse body.
func ErrorFields(body []byte) (severity, code, message string, err error) {
	rest := body
	var localized string
	for {
		if len(rest) == 0 {
			return "", "", "", fmt.Errorf("%w: unterminated error fields", ErrMalformed)
		}
		t := rest[0]
		if t == 0 {
			if len(rest) != 1 {
				return "", "", "", fmt.Errorf("%w: bytes after error fields", ErrMalformed)
			}
			break
		}
		v, after, ok := CString(rest[1:])
		if !ok {
			return "", "", "", fmt.Errorf("%w: unterminated error field", ErrMalformed)
		}
		switch t {
		case 'V':
			severity = string(v)
		case 'S':
			localized = string(v)
		case 'C':
			code = string(v)
		case 'M':
			message = string(v)
		}
		rest = after
	}
	if severity == "" {
		severity = localized
	}
	return severity, code, message, nil
}
