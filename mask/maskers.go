package mask

import (
	"bytes"
	"fmt"
	"unicode"
	"unicode/utf8"
)

// The pg_type OIDs the built-in maskers know.
const (
	oidName    uint32 = 19
	oidInt8    uint32 = 20
	oidInt2    uint32 = 21
	oidInt4    uint32 = 23
	oidText    uint32 = 25
	oidUnknown uint32 = 705
	oidBpchar  uint32 = 1042
	oidVarchar uint32 = 1043
	oidNumeric uint32 = 1700
)

// redaction replaces a whole text value, or the hidden part of one. It
// has a fixed length, so it does not tell the length of what it hides.
const redaction = "***"

// TextLike reports whether values of the type typeOID are plain strings
// the text maskers can rewrite freely: text (25), varchar (1043), bpchar
// (1042), name (19) and unknown (705). Their binary wire form is their
// text, so they are masked in both formats. json, jsonb and xml are not
// text-like (a masked value must stay a valid document), nor are types
// created by extensions (citext, ...), whose OIDs differ between
// databases.
//
// The built-in maskers share these rules:
//   - What they give for a text-like type is valid UTF-8 without NUL,
//     whatever the input: a byte they keep that is not part of valid UTF-8
//     (or is NUL) is written as U+FFFD. They assume the client encoding
//     is UTF8.
//   - bpchar's padding (its trailing spaces) is not part of the value, as
//     in PostgreSQL's comparisons: it is dropped before masking, so 'ab'
//     in char(4) and in char(8) mask alike. Only Digits keeps it.
//   - A type a masker does not handle, and a format other than Text and
//     Binary, give NULL: never the input.
//   - Their errors never quote the value or a key.
func TextLike(typeOID uint32) bool {
	switch typeOID {
	case oidText, oidVarchar, oidBpchar, oidName, oidUnknown:
		return true
	}
	return false
}

// validFormat reports whether f is one of the two wire formats.
func validFormat(f Format) bool { return f == Text || f == Binary }

// textCell reports whether a text masker handles c.
func textCell(c Cell) bool { return TextLike(c.Type) && validFormat(c.Format) }

// textValue is the value of a text-like cell as the maskers read it:
// without bpchar's padding.
func textValue(c Cell) []byte {
	if c.Type == oidBpchar {
		return bytes.TrimRight(c.Value, " ")
	}
	return c.Value
}

// appendText appends b, writing U+FFFD for each byte that is not part of a
// valid UTF-8 sequence, and for NUL (which no PostgreSQL text holds).
func appendText(dst, b []byte) []byte {
	for len(b) > 0 {
		if c := b[0]; c < utf8.RuneSelf && c != 0 {
			dst = append(dst, c)
			b = b[1:]
			continue
		}
		r, size := utf8.DecodeRune(b)
		if (r == utf8.RuneError && size == 1) || r == 0 {
			dst = utf8.AppendRune(dst, utf8.RuneError)
		} else {
			dst = append(dst, b[:size]...)
		}
		b = b[size:]
	}
	return dst
}

// Redact returns a Masker that replaces every value of a text-like type
// (see TextLike), in either format, with "***": the same three characters
// whatever the value, so not even its length shows. Every other type is
// masked to NULL.
func Redact() Masker { return redactMasker{} }

type redactMasker struct{}

func (redactMasker) Mask(dst []byte, c Cell) ([]byte, bool, error) {
	if !textCell(c) {
		return dst, true, nil
	}
	return append(dst, redaction...), false, nil
}

func (redactMasker) String() string { return "redact" }

// Null returns a Masker that masks every value of every type to NULL.
func Null() Masker { return nullMasker{} }

type nullMasker struct{}

func (nullMasker) Mask(dst []byte, _ Cell) ([]byte, bool, error) { return dst, true, nil }

func (nullMasker) String() string { return "null" }

// Partial returns a Masker that keeps the first keepFirst and the last
// keepLast characters of a value of a text-like type (see TextLike), in
// either format, and replaces what lies between with "***".
//
// Characters are Unicode code points (runes), never bytes, so a multi-byte
// character is kept whole or not at all; each byte that is not valid UTF-8
// counts as one character and is written as U+FFFD (so it is not kept).
// The length is not kept: the middle is "***" whatever its length, so
// Partial(0, 4) masks "4111 1111 1111 1111" to "***1111".
//
// A value of keepFirst+keepLast characters or fewer would show whole, or
// with nothing between: it is masked to "***". (So the output tells
// whether the value is longer than keepFirst+keepLast characters.) Every
// type that is not text-like is masked to NULL.
//
// Partial panics if keepFirst or keepLast is negative.
func Partial(keepFirst, keepLast int) Masker {
	if keepFirst < 0 || keepLast < 0 {
		panic(fmt.Sprintf("mask: Partial(%d, %d): negative count", keepFirst, keepLast))
	}
	return partialMasker{first: keepFirst, last: keepLast}
}

type partialMasker struct{ first, last int }

func (m partialMasker) Mask(dst []byte, c Cell) ([]byte, bool, error) {
	if !textCell(c) {
		return dst, true, nil
	}
	v := textValue(c)
	n := utf8.RuneCount(v)
	// n <= first+last, written so that it cannot overflow.
	if n <= m.first || n-m.first <= m.last {
		return append(dst, redaction...), false, nil
	}
	// DecodeRune counts an invalid byte as one rune of one byte, as
	// RuneCount does, so the boundaries agree with n.
	head := 0
	for range m.first {
		_, size := utf8.DecodeRune(v[head:])
		head += size
	}
	tail := head
	for range n - m.first - m.last {
		_, size := utf8.DecodeRune(v[tail:])
		tail += size
	}
	dst = appendText(dst, v[:head])
	dst = append(dst, redaction...)
	return appendText(dst, v[tail:]), false, nil
}

func (m partialMasker) String() string { return fmt.Sprintf("partial(%d,%d)", m.first, m.last) }

// Email returns a Masker for e-mail addresses in values of a text-like
// type (see TextLike), in either format.
//
// A value that looks like an address (a non-empty local part, then '@',
// then a domain: dot-separated labels of 1 to 63 letters, digits or
// hyphens, at least two labels, 253 bytes at most; the last '@' separates
// them) is masked to "***@" followed by the domain as it is when
// keepDomain is set ("alice@example.com" gives "***@example.com"), to
// "***@***" otherwise. The local part is never kept, nor its length. Any
// other value is masked to "***": a value without '@', or whose part
// after the last '@' is not a domain (so the text after an '@' in a
// sentence is not kept). Every type that is not text-like is masked to
// NULL.
func Email(keepDomain bool) Masker { return emailMasker{keepDomain: keepDomain} }

type emailMasker struct{ keepDomain bool }

func (m emailMasker) Mask(dst []byte, c Cell) ([]byte, bool, error) {
	if !textCell(c) {
		return dst, true, nil
	}
	v := textValue(c)
	at := bytes.LastIndexByte(v, '@')
	if at <= 0 || !isDomain(v[at+1:]) {
		return append(dst, redaction...), false, nil
	}
	dst = append(dst, redaction+"@"...)
	if !m.keepDomain {
		return append(dst, redaction...), false, nil
	}
	// isDomain admits only valid UTF-8 without NUL: the domain is copied
	// as it is.
	return append(dst, v[at+1:]...), false, nil
}

func (m emailMasker) String() string {
	if m.keepDomain {
		return "email(keep_domain)"
	}
	return "email"
}

// isDomain reports whether d is a domain name: at least two labels
// separated by dots, each of 1 to 63 bytes of ASCII letters, digits and
// hyphens or non-ASCII letters, digits and marks (internationalized
// names), 253 bytes at most.
func isDomain(d []byte) bool {
	if len(d) == 0 || len(d) > 253 {
		return false
	}
	labels, label := 1, 0
	for len(d) > 0 {
		c := d[0]
		size := 1
		switch {
		case c == '.':
			if label == 0 {
				return false
			}
			labels++
			label = 0
			d = d[1:]
			continue
		case c == '-' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z':
		case c < utf8.RuneSelf:
			return false
		default:
			var r rune
			r, size = utf8.DecodeRune(d)
			if (r == utf8.RuneError && size == 1) || !unicode.In(r, unicode.L, unicode.N, unicode.M) {
				return false
			}
		}
		label += size
		if label > 63 {
			return false
		}
		d = d[size:]
	}
	return label > 0 && labels >= 2
}
