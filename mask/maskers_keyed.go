package mask

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"strconv"
	"sync"
)

// MinKeySize is the length, in bytes, of the shortest key KeyedHash and
// Digits accept.
const MinKeySize = 16

// hashTextSize is how many bytes of the HMAC KeyedHash shows for a text
// value, as twice as many hex digits.
const hashTextSize = 16

// digitsDomain prefixes what Digits authenticates, so that its output is
// unrelated to KeyedHash's with the same key.
var digitsDomain = []byte("pgwarden mask digits v1\x00")

// keyedMAC computes HMAC-SHA256 with one key, from many goroutines at
// once, without allocating once warm.
type keyedMAC struct{ pool sync.Pool }

type macState struct {
	h   hash.Hash
	sum [sha256.Size]byte
	num [24]byte // the text of an integer
}

// newKeyedMAC keeps a copy of key (the caller may reuse it). name, the
// masker's, is for the error.
func newKeyedMAC(name string, key []byte) (*keyedMAC, error) {
	if len(key) < MinKeySize {
		return nil, fmt.Errorf("mask: %s: the key has %d bytes, it needs at least %d", name, len(key), MinKeySize)
	}
	k := bytes.Clone(key)
	m := &keyedMAC{}
	m.pool.New = func() any { return &macState{h: hmac.New(sha256.New, k)} }
	return m, nil
}

// sum returns HMAC-SHA256(key, prefix || v).
func (m *keyedMAC) sum(prefix, v []byte) [sha256.Size]byte {
	s := m.pool.Get().(*macState)
	s.h.Reset()
	s.h.Write(prefix)
	s.h.Write(v)
	out := [sha256.Size]byte(s.h.Sum(s.sum[:0]))
	m.pool.Put(s)
	return out
}

// sumInt returns HMAC-SHA256(key, prefix || v in decimal), the decimal
// being PostgreSQL's text form of v.
func (m *keyedMAC) sumInt(prefix []byte, v int64) [sha256.Size]byte {
	s := m.pool.Get().(*macState)
	s.h.Reset()
	s.h.Write(prefix)
	s.h.Write(strconv.AppendInt(s.num[:0], v, 10))
	out := [sha256.Size]byte(s.h.Sum(s.sum[:0]))
	m.pool.Put(s)
	return out
}

// intBits returns the width in bits of the integer type typeOID (int2,
// int4, int8), or 0.
func intBits(typeOID uint32) int {
	switch typeOID {
	case oidInt2:
		return 16
	case oidInt4:
		return 32
	case oidInt8:
		return 64
	}
	return 0
}

func intTypeName(bits int) string { return "int" + strconv.Itoa(bits/8) }

// parseIntCell decodes an integer cell of bits bits (see intBits), in text
// (PostgreSQL's output: an optional '-' and at most 19 digits) or binary
// (big-endian two's complement of exactly bits/8 bytes). The error does
// not quote the value.
func parseIntCell(c Cell, bits int, masker string) (int64, error) {
	if c.Format == Binary {
		switch {
		case len(c.Value) != bits/8:
		case bits == 16:
			return int64(int16(binary.BigEndian.Uint16(c.Value))), nil
		case bits == 32:
			return int64(int32(binary.BigEndian.Uint32(c.Value))), nil
		default:
			return int64(binary.BigEndian.Uint64(c.Value)), nil
		}
		return 0, fmt.Errorf("mask: %s: a binary %s value has %d bytes, want %d", masker, intTypeName(bits), len(c.Value), bits/8)
	}
	if v, ok := parseIntText(c.Value, bits); ok {
		return v, nil
	}
	return 0, fmt.Errorf("mask: %s: malformed text %s value (%d bytes)", masker, intTypeName(bits), len(c.Value))
}

// parseIntText parses an optional '-' and 1 to 19 ASCII digits, fitting a
// signed integer of bits bits.
func parseIntText(b []byte, bits int) (int64, bool) {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	if len(b) == 0 || len(b) > 19 {
		return 0, false
	}
	var u uint64 // 19 digits fit
	for _, d := range b {
		if d < '0' || d > '9' {
			return 0, false
		}
		u = u*10 + uint64(d-'0')
	}
	limit := uint64(1) << (bits - 1) // -limit is the least value
	switch {
	case neg && u <= limit:
		return int64(-u), true
	case !neg && u < limit:
		return int64(u), true
	}
	return 0, false
}

// appendInt appends v as an integer of bits bits in format f.
func appendInt(dst []byte, f Format, bits int, v int64) []byte {
	if f == Text {
		return strconv.AppendInt(dst, v, 10)
	}
	switch bits {
	case 16:
		return binary.BigEndian.AppendUint16(dst, uint16(v))
	case 32:
		return binary.BigEndian.AppendUint32(dst, uint32(v))
	}
	return binary.BigEndian.AppendUint64(dst, uint64(v))
}

// KeyedHash returns a Masker that replaces a value with a keyed hash of
// it, HMAC-SHA256 under key: the same value always gives the same output
// and different values practically never do, so joins, GROUP BY and
// DISTINCT on masked values still work, while the value cannot be found
// from the output without the key. KeyedHash keeps a copy of key; the key
// must have at least MinKeySize bytes. It never appears in an error.
//
//   - A text-like type (see TextLike), in either format, gives the first
//     32 hex digits (lower case) of HMAC-SHA256(key, value): what
//     PostgreSQL computes as left(encode(hmac(value, key, 'sha256'),
//     'hex'), 32) with pgcrypto. bpchar's padding is dropped first.
//   - int2, int4 and int8, in either format, give an integer of the same
//     type: the first 2, 4 or 8 bytes of HMAC-SHA256(key, value's decimal
//     text) as a big-endian signed integer (any value of the type,
//     negative ones included). A value gives the same output in text and
//     binary format. A malformed value is an error.
//   - Every other type is masked to NULL.
func KeyedHash(key []byte) (Masker, error) {
	mac, err := newKeyedMAC("hash", key)
	if err != nil {
		return nil, err
	}
	return hashMasker{mac: mac}, nil
}

type hashMasker struct{ mac *keyedMAC }

func (m hashMasker) Mask(dst []byte, c Cell) ([]byte, bool, error) {
	if !validFormat(c.Format) {
		return dst, true, nil
	}
	if TextLike(c.Type) {
		sum := m.mac.sum(nil, textValue(c))
		return hex.AppendEncode(dst, sum[:hashTextSize]), false, nil
	}
	bits := intBits(c.Type)
	if bits == 0 {
		return dst, true, nil
	}
	v, err := parseIntCell(c, bits, "hash")
	if err != nil {
		return dst, false, err
	}
	sum := m.mac.sumInt(nil, v)
	switch bits {
	case 16:
		v = int64(int16(binary.BigEndian.Uint16(sum[:])))
	case 32:
		v = int64(int32(binary.BigEndian.Uint32(sum[:])))
	default:
		v = int64(binary.BigEndian.Uint64(sum[:]))
	}
	return appendInt(dst, c.Format, bits, v), false, nil
}

func (hashMasker) String() string { return "hash" }

// Digits returns a format-preserving Masker: it replaces every ASCII digit
// of a value with a digit drawn from HMAC-SHA256 under key of the whole
// value, and keeps every other character where it is. The same value
// always gives the same output; a card number keeps its dashes and length,
// a phone number its format. Digits keeps a copy of key; the key must have
// at least MinKeySize bytes. It never appears in an error.
//
//   - A text-like type (see TextLike), in either format, keeps its length
//     in characters and all its characters but the digits 0-9 (bytes that
//     are not valid UTF-8 become U+FFFD). bpchar keeps its padding. A value
//     without a digit would show whole: it is masked to "***".
//   - int2, int4 and int8, in either format, give an integer of the same
//     type, sign and number of digits (so 0 gives 0 to 9 and -7 gives -1
//     to -9), within the type's range; the same value gives the same
//     output in text and binary format. A malformed value is an error.
//   - numeric in text format keeps its sign, decimal point and number of
//     digits on each side of it, so its precision and scale (the integer
//     part starts with a digit 1-9 when it has more than one). NaN and the
//     infinities, which have no digit, are masked to NULL, and so is
//     numeric in binary format. A malformed value is an error.
//   - Every other type is masked to NULL.
func Digits(key []byte) (Masker, error) {
	mac, err := newKeyedMAC("digits", key)
	if err != nil {
		return nil, err
	}
	return digitsMasker{mac: mac}, nil
}

type digitsMasker struct{ mac *keyedMAC }

func (m digitsMasker) Mask(dst []byte, c Cell) ([]byte, bool, error) {
	if !validFormat(c.Format) {
		return dst, true, nil
	}
	switch {
	case TextLike(c.Type):
		return m.text(dst, c)
	case c.Type == oidNumeric && c.Format == Text:
		return m.numeric(dst, c.Value)
	}
	bits := intBits(c.Type)
	if bits == 0 {
		return dst, true, nil
	}
	v, err := parseIntCell(c, bits, "digits")
	if err != nil {
		return dst, false, err
	}
	st := newDigitStream(m.mac.sumInt(digitsDomain, v))
	return appendInt(dst, c.Format, bits, st.sameDigits(v, bits)), false, nil
}

func (digitsMasker) String() string { return "digits" }

func isDigit(b byte) bool { return '0' <= b && b <= '9' }

func hasDigit(b []byte) bool {
	for _, c := range b {
		if isDigit(c) {
			return true
		}
	}
	return false
}

func (m digitsMasker) text(dst []byte, c Cell) ([]byte, bool, error) {
	v := c.Value
	if !hasDigit(v) {
		return append(dst, redaction...), false, nil
	}
	st := newDigitStream(m.mac.sum(digitsDomain, textValue(c)))
	// No byte of a multi-byte UTF-8 sequence is an ASCII digit: cutting
	// at the digits leaves the other characters whole.
	for i := 0; i < len(v); {
		if isDigit(v[i]) {
			dst = append(dst, st.digit(0))
			i++
			continue
		}
		j := i + 1
		for j < len(v) && !isDigit(v[j]) {
			j++
		}
		dst = appendText(dst, v[i:j])
		i = j
	}
	return dst, false, nil
}

func (m digitsMasker) numeric(dst []byte, v []byte) ([]byte, bool, error) {
	switch string(v) {
	case "NaN", "Infinity", "-Infinity":
		return dst, true, nil
	}
	// PostgreSQL writes a numeric as an optional '-', at least one digit,
	// and when its scale is not 0 a '.' and scale digits.
	b := v
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	whole := 0
	for whole < len(b) && isDigit(b[whole]) {
		whole++
	}
	frac := b[whole:]
	if len(frac) > 0 {
		if frac[0] != '.' || len(frac) == 1 {
			whole = 0
		}
		for _, d := range frac[1:] {
			if !isDigit(d) {
				whole = 0
			}
		}
	}
	if whole == 0 {
		return dst, false, fmt.Errorf("mask: digits: malformed text numeric value (%d bytes)", len(v))
	}
	st := newDigitStream(m.mac.sum(digitsDomain, v))
	if neg {
		dst = append(dst, '-')
	}
	for i := range whole {
		lo := byte(0)
		if i == 0 && whole > 1 {
			lo = 1
		}
		dst = append(dst, st.digit(lo))
	}
	if len(frac) > 0 {
		dst = append(dst, '.')
		for range frac[1:] {
			dst = append(dst, st.digit(0))
		}
	}
	return dst, false, nil
}

// digitStream draws digits from a secret seed: the bytes of
// SHA-256(seed || counter), counter a big-endian uint32 from 0. The seed
// itself is never shown.
type digitStream struct {
	seed  [sha256.Size]byte
	block [sha256.Size]byte
	used  int
	ctr   uint32
}

func newDigitStream(seed [sha256.Size]byte) digitStream {
	return digitStream{seed: seed, used: sha256.Size}
}

func (s *digitStream) next() byte {
	if s.used == len(s.block) {
		var in [sha256.Size + 4]byte
		copy(in[:], s.seed[:])
		binary.BigEndian.PutUint32(in[sha256.Size:], s.ctr)
		s.ctr++
		s.block = sha256.Sum256(in[:])
		s.used = 0
	}
	b := s.block[s.used]
	s.used++
	return b
}

// digit returns an ASCII digit uniform in lo to 9 (lo <= 9).
func (s *digitStream) digit(lo byte) byte {
	n := 10 - lo
	limit := 256 - 256%int(n) // reject the bytes that would bias the draw
	for {
		if b := s.next(); int(b) < limit {
			return '0' + lo + b%n
		}
	}
}

func (s *digitStream) uint64() uint64 {
	var u uint64
	for range 8 {
		u = u<<8 | uint64(s.next())
	}
	return u
}

// pow10[i] is 10 to the i.
var pow10 = [...]uint64{
	1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9,
	1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19,
}

// sameDigits draws an integer with v's sign and number of digits that
// fits a signed integer of bits bits, from the stream.
func (s *digitStream) sameDigits(v int64, bits int) int64 {
	neg := v < 0
	u := uint64(v)
	if neg {
		u = -u // -(-2^63) is 2^63 as a uint64
	}
	n := 1
	for n < len(pow10)-1 && u >= pow10[n] {
		n++
	}
	lo, hi := pow10[n-1], pow10[n]-1
	if n == 1 {
		lo = 0
		if neg {
			lo = 1 // -0 would lose the sign
		}
	}
	limit := uint64(1)<<(bits-1) - 1
	if neg {
		limit++
	}
	hi = min(hi, limit) // v is within [lo, hi]: the range is not empty
	w := lo + s.uint64()%(hi-lo+1)
	if neg {
		return int64(-w)
	}
	return int64(w)
}
