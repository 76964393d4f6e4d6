package mask_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/pgwarden/pgwarden/mask"
)

// pg_type OIDs used by the tests.
const (
	typBool      uint32 = 16
	typBytea     uint32 = 17
	typName      uint32 = 19
	typInt8      uint32 = 20
	typInt2      uint32 = 21
	typInt4      uint32 = 23
	typText      uint32 = 25
	typJSON      uint32 = 114
	typXML       uint32 = 142
	typFloat8    uint32 = 701
	typUnknown   uint32 = 705
	typBpchar    uint32 = 1042
	typVarchar   uint32 = 1043
	typTimestamp uint32 = 1114
	typNumeric   uint32 = 1700
	typUUID      uint32 = 2950
	typJSONB     uint32 = 3802
)

var (
	maskKey      = []byte("0123456789abcdef0123456789abcdef")
	otherMaskKey = []byte("fedcba9876543210fedcba9876543210")
)

func intTypeBits(typ uint32) int {
	switch typ {
	case typInt2:
		return 16
	case typInt4:
		return 32
	case typInt8:
		return 64
	}
	return 0
}

// maskOne masks c with m behind a non-empty dst, and checks what every masker
// must do: keep dst's prefix, leave c.Value alone.
func maskOne(t testing.TB, m mask.Masker, c mask.Cell) (out []byte, null bool, err error) {
	t.Helper()
	in := bytes.Clone(c.Value)
	prefix := []byte("prefix")
	dst := append(make([]byte, 0, 64), prefix...)
	got, null, err := m.Mask(dst, c)
	if !bytes.Equal(c.Value, in) {
		t.Fatalf("%v changed its input", m)
	}
	if err != nil || null {
		return nil, null, err
	}
	if !bytes.HasPrefix(got, prefix) {
		t.Fatalf("%v did not append to dst: %q", m, got)
	}
	return got[len(prefix):], false, nil
}

// mustMasker(t)(KeyedHash(key)) is the masker, or fails t.
func mustMasker(t testing.TB) func(mask.Masker, error) mask.Masker {
	return func(m mask.Masker, err error) mask.Masker {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
}

func keyedMaskers(t testing.TB) (hash, digits mask.Masker) {
	t.Helper()
	return mustMasker(t)(mask.KeyedHash(maskKey)), mustMasker(t)(mask.Digits(maskKey))
}

func TestTextLike(t *testing.T) {
	for _, typ := range []uint32{typText, typVarchar, typBpchar, typName, typUnknown} {
		if !mask.TextLike(typ) {
			t.Errorf("TextLike(%d) = false", typ)
		}
	}
	for _, typ := range []uint32{0, typBool, typBytea, typInt2, typInt4, typInt8, typJSON, typJSONB, typXML, typNumeric, typTimestamp, typUUID, 18} {
		if mask.TextLike(typ) {
			t.Errorf("TextLike(%d) = true", typ)
		}
	}
}

// What a masker gives for a type and format.
type maskOutcome int

const (
	wantNULL        maskOutcome = iota
	wantUTF8                    // valid UTF-8
	wantInteger                 // an integer of the cell's type, in its format
	wantNumericText             // a numeric in text format
)

// typedMaskCells are values of many types, each in text and binary format as
// the server sends them.
var typedMaskCells = []mask.Cell{
	{Type: typText, Format: mask.Text, Value: []byte("alice@example.com")},
	{Type: typText, Format: mask.Binary, Value: []byte("4111-1111-1111-1111")},
	{Type: typVarchar, Format: mask.Text, Value: []byte("Zoë Łukasz 日本語 12")},
	{Type: typVarchar, Format: mask.Binary, Value: []byte("+1 (555) 010-4477")},
	{Type: typBpchar, Format: mask.Text, Value: []byte("AB123     ")},
	{Type: typBpchar, Format: mask.Binary, Value: []byte("secret99  ")},
	{Type: typName, Format: mask.Text, Value: []byte("pg_secret_2024")},
	{Type: typUnknown, Format: mask.Text, Value: []byte("untyped literal 42")},
	{Type: typInt2, Format: mask.Text, Value: []byte("-12345")},
	{Type: typInt2, Format: mask.Binary, Value: []byte{0x30, 0x39}},
	{Type: typInt4, Format: mask.Text, Value: []byte("2147483647")},
	{Type: typInt4, Format: mask.Binary, Value: []byte{0x80, 0, 0, 0}},
	{Type: typInt8, Format: mask.Text, Value: []byte("-9223372036854775808")},
	{Type: typInt8, Format: mask.Binary, Value: []byte{0, 0, 0, 0, 0x49, 0x96, 0x02, 0xd2}},
	{Type: typNumeric, Format: mask.Text, Value: []byte("-12345.6789")},
	{Type: typNumeric, Format: mask.Binary, Value: []byte{0, 2, 0, 1, 0x40, 0, 0, 4, 0, 1, 0x09, 0x29}},
	{Type: typBytea, Format: mask.Text, Value: []byte(`\x5365637265742062797465`)},
	{Type: typBytea, Format: mask.Binary, Value: []byte("Secret bytes")},
	{Type: typJSON, Format: mask.Text, Value: []byte(`{"ssn":"078-05-1120"}`)},
	{Type: typJSON, Format: mask.Binary, Value: []byte(`{"ssn":"078-05-1120"}`)},
	{Type: typJSONB, Format: mask.Text, Value: []byte(`{"ssn": "078-05-1120"}`)},
	{Type: typJSONB, Format: mask.Binary, Value: append([]byte{1}, `{"ssn": "078-05-1120"}`...)},
	{Type: typXML, Format: mask.Text, Value: []byte(`<ssn>078-05-1120</ssn>`)},
	{Type: typTimestamp, Format: mask.Text, Value: []byte("2024-02-29 13:45:00.123")},
	{Type: typTimestamp, Format: mask.Binary, Value: []byte{0, 2, 0xb5, 0x7e, 0x3c, 0x6c, 0x8e, 0xb8}},
	{Type: typUUID, Format: mask.Text, Value: []byte("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")},
	{Type: typUUID, Format: mask.Binary, Value: []byte("0123456789abcdef")},
	{Type: typFloat8, Format: mask.Text, Value: []byte("3.14159265")},
	{Type: typBool, Format: mask.Binary, Value: []byte{1}},
	{Type: 99999, Format: mask.Text, Value: []byte("custom type 1234")},
}

// checkMaskOutput checks that out is what w says for c.
func checkMaskOutput(t testing.TB, name string, c mask.Cell, w maskOutcome, out []byte, null bool) {
	t.Helper()
	if w == wantNULL {
		if !null {
			t.Errorf("%s on type %d format %d: got %q, want NULL", name, c.Type, c.Format, out)
		}
		return
	}
	if null {
		t.Errorf("%s on type %d format %d (%q): got NULL", name, c.Type, c.Format, c.Value)
		return
	}
	switch w {
	case wantUTF8:
		if !utf8.Valid(out) || bytes.IndexByte(out, 0) >= 0 {
			t.Errorf("%s on type %d: %q is not valid text", name, c.Type, out)
		}
	case wantInteger:
		checkIntOutput(t, name, c, out)
	case wantNumericText:
		if !numericTextRE.Match(out) {
			t.Errorf("%s on numeric %q: %q is not a numeric", name, c.Value, out)
		}
	}
}

var numericTextRE = regexp.MustCompile(`^-?[0-9]+(\.[0-9]+)?$`)

// checkIntOutput checks that out is an integer of c's type in c's format.
func checkIntOutput(t testing.TB, name string, c mask.Cell, out []byte) int64 {
	t.Helper()
	bits := intTypeBits(c.Type)
	if c.Format == mask.Binary {
		if len(out) != bits/8 {
			t.Errorf("%s on binary int%d: %d bytes", name, bits/8, len(out))
			return 0
		}
		var u uint64
		for _, b := range out {
			u = u<<8 | uint64(b)
		}
		return int64(u<<(64-bits)) >> (64 - bits) // sign-extend
	}
	v, err := strconv.ParseInt(string(out), 10, bits)
	if err != nil || strconv.FormatInt(v, 10) != string(out) {
		t.Errorf("%s on text int%d %q: %q is not an int%d (%v)", name, bits/8, c.Value, out, bits/8, err)
	}
	return v
}

func TestMaskersByType(t *testing.T) {
	hash, digits := keyedMaskers(t)
	textOnly := func(c mask.Cell) maskOutcome {
		if mask.TextLike(c.Type) {
			return wantUTF8
		}
		return wantNULL
	}
	textOrInt := func(c mask.Cell) maskOutcome {
		if intTypeBits(c.Type) != 0 {
			return wantInteger
		}
		return textOnly(c)
	}
	for _, tc := range []struct {
		name string
		m    mask.Masker
		want func(mask.Cell) maskOutcome
	}{
		{"redact", mask.Redact(), textOnly},
		{"null", mask.Null(), func(mask.Cell) maskOutcome { return wantNULL }},
		{"partial", mask.Partial(2, 2), textOnly},
		{"email", mask.Email(true), textOnly},
		{"hash", hash, textOrInt},
		{"digits", digits, func(c mask.Cell) maskOutcome {
			if c.Type == typNumeric && c.Format == mask.Text {
				return wantNumericText
			}
			return textOrInt(c)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, c := range typedMaskCells {
				out, null, err := maskOne(t, tc.m, c)
				if err != nil {
					t.Errorf("type %d format %d: %v", c.Type, c.Format, err)
					continue
				}
				checkMaskOutput(t, tc.name, c, tc.want(c), out, null)
				if !null && bytes.Equal(out, c.Value) {
					t.Errorf("type %d format %d: returned its input %q", c.Type, c.Format, c.Value)
				}
				// No format but Text and Binary exists: NULL, never the input.
				bad := c
				bad.Format = 2
				if out, null, err := maskOne(t, tc.m, bad); err != nil || !null {
					t.Errorf("type %d format 2: got %q, %v, %v; want NULL", c.Type, out, null, err)
				}
			}
		})
	}
}

func TestRedact(t *testing.T) {
	m := mask.Redact()
	for _, v := range []string{"", "a", "alice", strings.Repeat("long secret ", 100), "\xff\xfe", "日本語"} {
		for _, typ := range []uint32{typText, typVarchar, typBpchar, typName, typUnknown} {
			for _, f := range []mask.Format{mask.Text, mask.Binary} {
				out, null, err := maskOne(t, m, mask.Cell{Type: typ, Format: f, Value: []byte(v)})
				if err != nil || null || string(out) != "***" {
					t.Errorf("Redact on %q (type %d): %q, %v, %v; want ***", v, typ, out, null, err)
				}
			}
		}
	}
}

func TestNull(t *testing.T) {
	for _, c := range typedMaskCells {
		if out, null, err := maskOne(t, mask.Null(), c); err != nil || !null {
			t.Errorf("Null on type %d: %q, %v, %v", c.Type, out, null, err)
		}
	}
}

func TestPartial(t *testing.T) {
	for _, tc := range []struct {
		first, last int
		typ         uint32
		in, want    string
	}{
		{0, 4, typText, "4111 1111 1111 1111", "***1111"},
		{6, 4, typVarchar, "4111111111111111", "411111***1111"},
		{2, 2, typText, "alice", "al***ce"},
		{1, 0, typText, "alice", "a***"},
		{0, 1, typText, "alice", "***e"},
		// Too short to keep anything: masked whole.
		{2, 2, typText, "alic", "***"},
		{2, 2, typText, "", "***"},
		{0, 4, typText, "1234", "***"},
		{3, 0, typText, "abc", "***"},
		// Runes, not bytes.
		{2, 2, typText, "Zoë Łukasz", "Zo***sz"},
		{1, 1, typText, "日本語です", "日***す"},
		{2, 1, typText, "😀😃x😄😁", "😀😃***😁"},
		{1, 1, typText, "日本", "***"},
		// Invalid UTF-8: each bad byte is one character, written U+FFFD.
		{2, 2, typText, "\xffb\xfe\xfd-secret-\xc3\xe9z", "\uFFFDb***\uFFFDz"},
		{1, 1, typText, "\xe6\x97\xa5\xe6\x97abc", "日***c"},
		{2, 0, typText, "a\x00secret", "a\uFFFD***"},
		{4, 4, typText, "\xff\xff\xff", "***"},
		// bpchar's padding is not part of the value.
		{0, 2, typBpchar, "AB123     ", "***23"},
		{0, 2, typBpchar, "AB        ", "***"},
		{0, 2, typText, "AB123     ", "***  "},
		// Huge counts do not overflow.
		{math.MaxInt, math.MaxInt, typText, "anything", "***"},
		{math.MaxInt, 0, typText, "anything", "***"},
		{0, math.MaxInt, typText, "anything", "***"},
	} {
		m := mask.Partial(tc.first, tc.last)
		for _, f := range []mask.Format{mask.Text, mask.Binary} {
			out, null, err := maskOne(t, m, mask.Cell{Type: tc.typ, Format: f, Value: []byte(tc.in)})
			if err != nil || null || string(out) != tc.want {
				t.Errorf("Partial(%d, %d) on %q: %q, %v, %v; want %q", tc.first, tc.last, tc.in, out, null, err, tc.want)
			}
			if !utf8.ValidString(string(out)) {
				t.Errorf("Partial(%d, %d) on %q: invalid UTF-8 %q", tc.first, tc.last, tc.in, out)
			}
		}
	}
}

func TestPartialKeepsOnlyItsCharacters(t *testing.T) {
	// Whatever the input, the output is at most keepFirst and keepLast
	// characters of it around "***", and never more bytes of it than
	// those characters hold.
	for _, in := range []string{"abcdefghij", "日本語のテキストです", "\xff\xfe\xfd\xfc\xfb\xfa\xf9", "a\xe6\x97b\xe6\x97\xa5c\xf0\x9f\x98d"} {
		for first := range 5 {
			for last := range 5 {
				out, _, _ := maskOne(t, mask.Partial(first, last), mask.Cell{Type: typText, Value: []byte(in)})
				s := string(out)
				head, tail, _ := strings.Cut(s, "***")
				if strings.Count(s, "*") != 3 {
					t.Fatalf("Partial(%d, %d) on %q: %q has no single ***", first, last, in, s)
				}
				if n := utf8.RuneCountInString(head); n > first {
					t.Errorf("Partial(%d, %d) on %q: kept %d leading characters", first, last, in, n)
				}
				if n := utf8.RuneCountInString(tail); n > last {
					t.Errorf("Partial(%d, %d) on %q: kept %d trailing characters", first, last, in, n)
				}
				for _, part := range strings.Split(head+"\uFFFD"+tail, "\uFFFD") {
					if !strings.Contains(in, part) {
						t.Errorf("Partial(%d, %d) on %q: %q is not from the input", first, last, in, part)
					}
				}
				if utf8.RuneCountInString(in) > first+last && (utf8.RuneCountInString(head) != first || utf8.RuneCountInString(tail) != last) {
					t.Errorf("Partial(%d, %d) on %q: %q does not keep its characters", first, last, in, s)
				}
			}
		}
	}
}

func TestPartialPanicsOnNegative(t *testing.T) {
	for _, args := range [][2]int{{-1, 0}, {0, -1}, {-5, -5}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Partial(%d, %d) did not panic", args[0], args[1])
				}
			}()
			mask.Partial(args[0], args[1])
		}()
	}
}

func TestEmail(t *testing.T) {
	for _, tc := range []struct {
		in, keep, hide string
	}{
		{"alice@example.com", "***@example.com", "***@***"},
		{"a@b.co", "***@b.co", "***@***"},
		{"first.last+tag@mail.example.co.uk", "***@mail.example.co.uk", "***@***"},
		{`"odd@local"@example.org`, "***@example.org", "***@***"},
		{"josé@bücher.de", "***@bücher.de", "***@***"},
		{"user@xn--bcher-kva.de", "***@xn--bcher-kva.de", "***@***"},
		{"user@EXAMPLE.COM", "***@EXAMPLE.COM", "***@***"},
		// Not an address: masked whole.
		{"alice", "***", "***"},
		{"", "***", "***"},
		{"@example.com", "***", "***"},
		{"alice@", "***", "***"},
		{"alice@localhost", "***", "***"},
		{"alice@example.com.", "***", "***"},
		{"alice@.example.com", "***", "***"},
		{"alice@example..com", "***", "***"},
		{"alice@exa mple.com", "***", "***"},
		{"Alice <alice@example.com>", "***", "***"},
		{"my password is hunter2@ secret words", "***", "***"},
		{"alice@example.com\x00", "***", "***"},
		{"alice@exam\xffple.com", "***", "***"},
		{"alice@" + strings.Repeat("a", 64) + ".com", "***", "***"},
		{"alice@" + strings.Repeat("abcdefgh.", 28) + "com", "***", "***"},
		{"alice@" + strings.Repeat("a", 63) + ".com", "***@" + strings.Repeat("a", 63) + ".com", "***@***"},
		{"alice@ex_ample.com", "***", "***"},
	} {
		for _, f := range []mask.Format{mask.Text, mask.Binary} {
			c := mask.Cell{Type: typVarchar, Format: f, Value: []byte(tc.in)}
			if out, null, err := maskOne(t, mask.Email(true), c); err != nil || null || string(out) != tc.keep {
				t.Errorf("Email(true) on %q: %q, %v, %v; want %q", tc.in, out, null, err, tc.keep)
			}
			if out, null, err := maskOne(t, mask.Email(false), c); err != nil || null || string(out) != tc.hide {
				t.Errorf("Email(false) on %q: %q, %v, %v; want %q", tc.in, out, null, err, tc.hide)
			}
		}
	}
	// bpchar's padding is dropped.
	c := mask.Cell{Type: typBpchar, Value: []byte("bob@example.net    ")}
	if out, _, _ := maskOne(t, mask.Email(true), c); string(out) != "***@example.net" {
		t.Errorf("Email(true) on padded bpchar: %q", out)
	}
}

func TestKeyedHashText(t *testing.T) {
	hash, _ := keyedMaskers(t)
	// The output is the pgcrypto expression of the documentation.
	mac := hmac.New(sha256.New, maskKey)
	mac.Write([]byte("alice@example.com"))
	want := hex.EncodeToString(mac.Sum(nil))[:32]
	for _, typ := range []uint32{typText, typVarchar, typName, typUnknown, typBpchar} {
		for _, f := range []mask.Format{mask.Text, mask.Binary} {
			v := "alice@example.com"
			if typ == typBpchar {
				v += "   "
			}
			out, null, err := maskOne(t, hash, mask.Cell{Type: typ, Format: f, Value: []byte(v)})
			if err != nil || null || string(out) != want {
				t.Errorf("KeyedHash on type %d format %d: %q, %v, %v; want %q", typ, f, out, null, err, want)
			}
		}
	}
	seen := map[string]string{}
	for _, v := range []string{"", "a", "b", "alice", "alice ", "Alice", "\xff", strings.Repeat("x", 10000)} {
		out, _, err := maskOne(t, hash, mask.Cell{Type: typText, Value: []byte(v)})
		if err != nil || len(out) != 32 || strings.Trim(string(out), "0123456789abcdef") != "" {
			t.Errorf("KeyedHash on %q: %q, %v", v, out, err)
		}
		if prev, ok := seen[string(out)]; ok {
			t.Errorf("KeyedHash: %q and %q both give %q", prev, v, out)
		}
		seen[string(out)] = v
	}
}

func TestKeyedDeterministic(t *testing.T) {
	hash, digits := keyedMaskers(t)
	hash2, digits2 := keyedMaskers(t)
	otherHash := mustMasker(t)(mask.KeyedHash(otherMaskKey))
	otherDigits := mustMasker(t)(mask.Digits(otherMaskKey))
	cells := []mask.Cell{
		{Type: typText, Value: []byte("alice42@example.com")},
		{Type: typVarchar, Format: mask.Binary, Value: []byte("4111-1111-1111-1111")},
		{Type: typInt4, Value: []byte("123456789")},
		{Type: typInt8, Format: mask.Binary, Value: []byte{0, 0, 0, 0, 0x49, 0x96, 0x02, 0xd2}},
	}
	for _, pair := range [][3]mask.Masker{{hash, hash2, otherHash}, {digits, digits2, otherDigits}} {
		for _, c := range cells {
			a, _, err := maskOne(t, pair[0], c)
			if err != nil {
				t.Fatal(err)
			}
			b, _, _ := maskOne(t, pair[0], c)
			again, _, _ := maskOne(t, pair[1], c)
			other, _, _ := maskOne(t, pair[2], c)
			if !bytes.Equal(a, b) || !bytes.Equal(a, again) {
				t.Errorf("%v on %q: %q, then %q, then %q with a new masker", pair[0], c.Value, a, b, again)
			}
			if bytes.Equal(a, other) {
				t.Errorf("%v on %q: %q with both keys", pair[0], c.Value, a)
			}
		}
	}
	// Hash and digits under one key are unrelated: digits is not the hash
	// read as digits.
	h, _, _ := maskOne(t, hash, mask.Cell{Type: typInt8, Value: []byte("1234567890123456789")})
	d, _, _ := maskOne(t, digits, mask.Cell{Type: typInt8, Value: []byte("1234567890123456789")})
	if bytes.Equal(h, d) {
		t.Errorf("hash and digits agree on an int8: %q", h)
	}
}

func TestKeyedCopiesKey(t *testing.T) {
	key := bytes.Clone(maskKey)
	hash := mustMasker(t)(mask.KeyedHash(key))
	digits := mustMasker(t)(mask.Digits(key))
	c := mask.Cell{Type: typText, Value: []byte("555-0100")}
	h1, _, _ := maskOne(t, hash, c)
	d1, _, _ := maskOne(t, digits, c)
	clear(key)
	h2, _, _ := maskOne(t, hash, c)
	d2, _, _ := maskOne(t, digits, c)
	if !bytes.Equal(h1, h2) || !bytes.Equal(d1, d2) {
		t.Errorf("changing the caller's key changed the output: %q %q, %q %q", h1, h2, d1, d2)
	}
}

func TestKeyErrors(t *testing.T) {
	short := []byte("SHORTSECRETKEY!") // 15 bytes
	for _, ctor := range []func([]byte) (mask.Masker, error){mask.KeyedHash, mask.Digits} {
		for _, key := range [][]byte{nil, {}, short} {
			m, err := ctor(key)
			if err == nil || m != nil {
				t.Errorf("a %d-byte key: %v, %v", len(key), m, err)
				continue
			}
			if len(key) > 0 && strings.Contains(err.Error(), string(key)) {
				t.Errorf("the error quotes the key: %v", err)
			}
		}
		if _, err := ctor(maskKey[:mask.MinKeySize]); err != nil {
			t.Errorf("a %d-byte key: %v", mask.MinKeySize, err)
		}
	}
	// Nor does the masker show it when printed.
	hash := mustMasker(t)(mask.KeyedHash(maskKey))
	digits := mustMasker(t)(mask.Digits(maskKey))
	for _, m := range []mask.Masker{hash, digits} {
		for _, s := range []string{fmt.Sprint(m), fmt.Sprintf("%+v", m), fmt.Sprintf("%#v", m)} {
			if strings.Contains(s, string(maskKey[:8])) || strings.Contains(s, hex.EncodeToString(maskKey[:8])) {
				t.Errorf("printing the masker shows the key: %s", s)
			}
		}
	}
}

func TestKeyedHashInts(t *testing.T) {
	hash, _ := keyedMaskers(t)
	for _, typ := range []uint32{typInt2, typInt4, typInt8} {
		bits := intTypeBits(typ)
		outs := map[int64]bool{}
		values := []int64{0, 1, -1, 42, -42, 1<<(bits-1) - 1, -1 << (bits - 1), 12345}
		for _, v := range values {
			text := mask.Cell{Type: typ, Format: mask.Text, Value: strconv.AppendInt(nil, v, 10)}
			bin := mask.Cell{Type: typ, Format: mask.Binary, Value: binary.BigEndian.AppendUint64(nil, uint64(v))[8-bits/8:]}
			tout, null, err := maskOne(t, hash, text)
			if err != nil || null {
				t.Fatalf("KeyedHash on int%d %d: %v, %v", bits/8, v, null, err)
			}
			bout, null, err := maskOne(t, hash, bin)
			if err != nil || null {
				t.Fatalf("KeyedHash on binary int%d %d: %v, %v", bits/8, v, null, err)
			}
			tv, bv := checkIntOutput(t, "hash", text, tout), checkIntOutput(t, "hash", bin, bout)
			if tv != bv {
				t.Errorf("KeyedHash on int%d %d: %d in text, %d in binary", bits/8, v, tv, bv)
			}
			// The documented derivation.
			mac := hmac.New(sha256.New, maskKey)
			mac.Write(text.Value)
			sum := mac.Sum(nil)
			want := int64(binary.BigEndian.Uint64(sum)) >> (64 - bits)
			if tv != want {
				t.Errorf("KeyedHash on int%d %d: %d, want %d", bits/8, v, tv, want)
			}
			outs[tv] = true
		}
		if len(outs) < len(values)-1 { // int2 may collide, rarely
			t.Errorf("KeyedHash on int%d: %d distinct outputs for %d values", bits/8, len(outs), len(values))
		}
	}
}

func TestMalformedInts(t *testing.T) {
	hash, digits := keyedMaskers(t)
	for _, c := range []mask.Cell{
		{Type: typInt2, Value: []byte("32768")},
		{Type: typInt2, Value: []byte("-32769")},
		{Type: typInt4, Value: []byte("2147483648")},
		{Type: typInt8, Value: []byte("9223372036854775808")},
		{Type: typInt8, Value: []byte("-9223372036854775809")},
		{Type: typInt8, Value: []byte("99999999999999999999")},
		{Type: typInt4, Value: []byte("")},
		{Type: typInt4, Value: []byte("-")},
		{Type: typInt4, Value: []byte("12a4")},
		{Type: typInt4, Value: []byte(" 1234")},
		{Type: typInt4, Value: []byte("+1234")},
		{Type: typInt4, Value: []byte("secret-value-1234")},
		{Type: typInt2, Format: mask.Binary, Value: []byte{1, 2, 3}},
		{Type: typInt4, Format: mask.Binary, Value: []byte{1, 2}},
		{Type: typInt8, Format: mask.Binary, Value: []byte("secrets!!")},
		{Type: typInt8, Format: mask.Binary, Value: nil},
	} {
		for _, m := range []mask.Masker{hash, digits} {
			out, null, err := maskOne(t, m, c)
			if err == nil {
				t.Errorf("%v on malformed int %q: %q, %v, no error", m, c.Value, out, null)
				continue
			}
			if len(c.Value) >= 4 && strings.Contains(err.Error(), string(c.Value)) {
				t.Errorf("%v: the error quotes the value: %v", m, err)
			}
		}
	}
}

func TestDigitsText(t *testing.T) {
	_, digits := keyedMaskers(t)
	for _, tc := range []struct {
		typ uint32
		in  string
	}{
		{typText, "4111-1111-1111-1111"},
		{typVarchar, "+1 (555) 010-4477"},
		{typText, "078-05-1120"},
		{typText, "DE89 3704 0044 0532 0130 00"},
		{typBpchar, "AB123     "},
		{typName, "user_2024_01"},
		{typText, "Zoë 日本 42"},
		{typText, strings.Repeat("0123456789", 50)},
	} {
		for _, f := range []mask.Format{mask.Text, mask.Binary} {
			out, null, err := maskOne(t, digits, mask.Cell{Type: tc.typ, Format: f, Value: []byte(tc.in)})
			if err != nil || null {
				t.Fatalf("Digits on %q: %v, %v", tc.in, null, err)
			}
			if !sameDigitShape(tc.in, string(out)) {
				t.Errorf("Digits on %q: %q does not keep the format", tc.in, out)
			}
			if string(out) == tc.in {
				t.Errorf("Digits on %q: returned its input", tc.in)
			}
		}
	}
	// The digits are well spread: each appears in a long output.
	out, _, _ := maskOne(t, digits, mask.Cell{Type: typText, Value: bytes.Repeat([]byte("0"), 1000)})
	for d := '0'; d <= '9'; d++ {
		if n := strings.Count(string(out), string(d)); n < 50 || n > 150 {
			t.Errorf("Digits: %c appears %d times in 1000 digits", d, n)
		}
	}
	// Without a digit there is nothing to keep the format of.
	for _, v := range []string{"", "hello world", "日本語", "\xff\xfe"} {
		if out, null, err := maskOne(t, digits, mask.Cell{Type: typText, Value: []byte(v)}); err != nil || null || string(out) != "***" {
			t.Errorf("Digits on %q: %q, %v, %v; want ***", v, out, null, err)
		}
	}
	// Invalid UTF-8 around digits becomes U+FFFD.
	out, _, _ = maskOne(t, digits, mask.Cell{Type: typText, Value: []byte("\xff12\xe6\x97-34\x00")})
	if !utf8.Valid(out) || !regexp.MustCompile("^\uFFFD[0-9]{2}\uFFFD\uFFFD-[0-9]{2}\uFFFD$").Match(out) {
		t.Errorf("Digits on invalid UTF-8: %q", out)
	}
}

// sameDigitShape reports whether out is in with other digits.
func sameDigitShape(in, out string) bool {
	if len(in) != len(out) {
		return false
	}
	for i := range len(in) {
		if isASCIIDigit(in[i]) != isASCIIDigit(out[i]) || !isASCIIDigit(in[i]) && in[i] != out[i] {
			return false
		}
	}
	return true
}

func isASCIIDigit(b byte) bool { return '0' <= b && b <= '9' }

func TestDigitsInts(t *testing.T) {
	_, digits := keyedMaskers(t)
	check := func(typ uint32, v int64) {
		t.Helper()
		bits := intTypeBits(typ)
		text := mask.Cell{Type: typ, Format: mask.Text, Value: strconv.AppendInt(nil, v, 10)}
		bin := mask.Cell{Type: typ, Format: mask.Binary, Value: binary.BigEndian.AppendUint64(nil, uint64(v))[8-bits/8:]}
		tout, null, err := maskOne(t, digits, text)
		if err != nil || null {
			t.Fatalf("Digits on int%d %d: %v, %v", bits/8, v, null, err)
		}
		bout, null, err := maskOne(t, digits, bin)
		if err != nil || null {
			t.Fatalf("Digits on binary int%d %d: %v, %v", bits/8, v, null, err)
		}
		tv, bv := checkIntOutput(t, "digits", text, tout), checkIntOutput(t, "digits", bin, bout)
		if tv != bv {
			t.Errorf("Digits on int%d %d: %d in text, %d in binary", bits/8, v, tv, bv)
		}
		if len(tout) != len(text.Value) || (tv < 0) != (v < 0) {
			t.Errorf("Digits on int%d %d: %d has another sign or length", bits/8, v, tv)
		}
	}
	// Every int2, both formats.
	for v := math.MinInt16; v <= math.MaxInt16; v++ {
		check(typInt2, int64(v))
	}
	// The edges of int4 and int8, where the most digits overflow easily.
	for _, v := range []int64{0, 1, -1, 9, -9, 10, -10, 99, 1e9, 1999999999, 2147483647, -2147483648, -2147483647, 2000000000, -1000000000} {
		check(typInt4, v)
	}
	for _, v := range []int64{0, 7, -7, 1e18, -1e18, math.MaxInt64, math.MinInt64, math.MaxInt64 - 1, math.MinInt64 + 1, 9000000000000000000, 1234567890123456789} {
		check(typInt8, v)
	}
	for i := range int64(5000) {
		check(typInt4, 2147483647-i*7919)
		check(typInt4, -2147483648+i*7919)
		check(typInt8, math.MaxInt64-i*1e15)
		check(typInt8, math.MinInt64+i*1e15)
	}
	// Single digits keep their sign (checked above), and take several
	// values.
	for _, sign := range []string{"", "-"} {
		seen := map[string]bool{}
		for i := 1; i <= 9; i++ {
			out, _, _ := maskOne(t, digits, mask.Cell{Type: typInt4, Value: []byte(sign + strconv.Itoa(i))})
			seen[string(out)] = true
		}
		if len(seen) < 4 {
			t.Errorf("Digits on %q1 to %q9: only %d outputs", sign, sign, len(seen))
		}
	}
}

func TestDigitsNumeric(t *testing.T) {
	_, digits := keyedMaskers(t)
	for _, in := range []string{"0", "-0.5", "12345.6789", "-12345.6789", "0.000001", "100", "1.00", "-9", strings.Repeat("9", 200) + "." + strings.Repeat("1", 50)} {
		out, null, err := maskOne(t, digits, mask.Cell{Type: typNumeric, Value: []byte(in)})
		if err != nil || null {
			t.Fatalf("Digits on numeric %q: %v, %v", in, null, err)
		}
		if !sameDigitShape(in, string(out)) || !numericTextRE.Match(out) {
			t.Errorf("Digits on numeric %q: %q", in, out)
		}
		whole, _, _ := strings.Cut(strings.TrimPrefix(string(out), "-"), ".")
		if len(whole) > 1 && whole[0] == '0' {
			t.Errorf("Digits on numeric %q: %q starts with 0", in, out)
		}
	}
	for _, in := range []string{"NaN", "Infinity", "-Infinity"} {
		if out, null, err := maskOne(t, digits, mask.Cell{Type: typNumeric, Value: []byte(in)}); err != nil || !null {
			t.Errorf("Digits on numeric %q: %q, %v, %v; want NULL", in, out, null, err)
		}
	}
	for _, in := range []string{"", "-", ".5", "5.", "1.2.3", "1e10", "12a", "--1", "nan", " 1"} {
		if out, null, err := maskOne(t, digits, mask.Cell{Type: typNumeric, Value: []byte(in)}); err == nil {
			t.Errorf("Digits on malformed numeric %q: %q, %v, no error", in, out, null)
		}
	}
}

// TestNoLeak checks that what the maskers give never holds their input
// (beyond what Partial and Email keep), for inputs of 4 bytes or more.
func TestNoLeak(t *testing.T) {
	hash, digits := keyedMaskers(t)
	inputs := []string{
		"alice@example.com", "4111111111111111", "4111-1111-1111-1111", "hunter22", "secret", "1234",
		"078-05-1120", "Łukasz Żółć", "日本語のテキスト", "\xff\xfe\xfd\xfc\xfb", "abcd", "2147483647", "-12345",
	}
	for _, tc := range []struct {
		m mask.Masker
		// strict: no 4 bytes of the input either (Partial and Email keep
		// some characters, Digits all but the digits).
		strict bool
	}{
		{mask.Redact(), true}, {mask.Null(), true}, {hash, true},
		{mask.Partial(1, 1), false}, {mask.Partial(0, 2), false}, {mask.Email(false), false}, {mask.Email(true), false}, {digits, false},
	} {
		for _, in := range inputs {
			for _, typ := range []uint32{typText, typVarchar, typBpchar, typName, typInt4, typInt8, typNumeric, typJSON, typBytea} {
				for _, f := range []mask.Format{mask.Text, mask.Binary} {
					out, null, err := maskOne(t, tc.m, mask.Cell{Type: typ, Format: f, Value: []byte(in)})
					if err != nil || null {
						continue
					}
					if bytes.Contains(out, []byte(in)) {
						t.Errorf("%v on %q (type %d format %d): %q holds the input", tc.m, in, typ, f, out)
					}
					for i := 0; tc.strict && i+4 <= len(in); i++ {
						if bytes.Contains(out, []byte(in[i:i+4])) {
							t.Errorf("%v on %q (type %d format %d): %q holds %q", tc.m, in, typ, f, out, in[i:i+4])
						}
					}
				}
			}
		}
	}
}

func TestConcurrent(t *testing.T) {
	hash, digits := keyedMaskers(t)
	cells := []mask.Cell{
		{Type: typText, Value: []byte("alice@example.com")},
		{Type: typInt8, Format: mask.Binary, Value: []byte{1, 2, 3, 4, 5, 6, 7, 8}},
		{Type: typText, Value: []byte("4111-1111-1111-1111")},
		{Type: typNumeric, Value: []byte("-1234.5678")},
	}
	want := make([][2][]byte, len(cells))
	for i, c := range cells {
		want[i][0], _, _ = maskOne(t, hash, c)
		want[i][1], _, _ = maskOne(t, digits, c)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			var dst []byte
			for i := range 500 {
				c := cells[i%len(cells)]
				for j, m := range []mask.Masker{hash, digits} {
					out, _, err := m.Mask(dst[:0], c)
					if err != nil || !bytes.Equal(out, want[i%len(cells)][j]) {
						t.Errorf("%v on %q: %q, %v concurrently; %q alone", m, c.Value, out, err, want[i%len(cells)][j])
						return
					}
					dst = out
				}
			}
		})
	}
	wg.Wait()
}

func TestMaskerSpec(t *testing.T) {
	for _, tc := range []struct {
		text string
		spec mask.MaskerSpec
	}{
		{"redact", mask.MaskerSpec{Method: "redact"}},
		{"null", mask.MaskerSpec{Method: "null"}},
		{"hash", mask.MaskerSpec{Method: "hash"}},
		{"digits", mask.MaskerSpec{Method: "digits"}},
		{"email", mask.MaskerSpec{Method: "email"}},
		{"email(keep_domain)", mask.MaskerSpec{Method: "email", KeepDomain: true}},
		{"partial(0,4)", mask.MaskerSpec{Method: "partial", KeepLast: 4}},
		{"partial(6,4)", mask.MaskerSpec{Method: "partial", KeepFirst: 6, KeepLast: 4}},
	} {
		spec, err := mask.ParseMaskerSpec(tc.text)
		if err != nil || spec != tc.spec {
			t.Errorf("ParseMaskerSpec(%q) = %+v, %v; want %+v", tc.text, spec, err, tc.spec)
		}
		if s := tc.spec.String(); s != tc.text {
			t.Errorf("%+v.String() = %q, want %q", tc.spec, s, tc.text)
		}
		m, err := tc.spec.Masker(maskKey)
		if err != nil {
			t.Errorf("%s: %v", tc.text, err)
			continue
		}
		if s := fmt.Sprint(m); s != tc.text {
			t.Errorf("%s: the masker prints as %q", tc.text, s)
		}
		if _, err := mask.ByName(tc.text, maskKey); err != nil {
			t.Errorf("ByName(%q): %v", tc.text, err)
		}
	}
	// Spaces are allowed around the parts.
	if spec, err := mask.ParseMaskerSpec(" partial( 2 , 3 ) "); err != nil || spec != (mask.MaskerSpec{Method: "partial", KeepFirst: 2, KeepLast: 3}) {
		t.Errorf("ParseMaskerSpec with spaces: %+v, %v", spec, err)
	}
	// The built maskers are the documented ones.
	m, _ := mask.ByName("partial(0,4)", nil)
	if out, _, _ := m.Mask(nil, mask.Cell{Type: typText, Value: []byte("4111111111111111")}); string(out) != "***1111" {
		t.Errorf("partial(0,4): %q", out)
	}
	m, _ = mask.ByName("email(keep_domain)", nil)
	if out, _, _ := m.Mask(nil, mask.Cell{Type: typText, Value: []byte("bob@example.org")}); string(out) != "***@example.org" {
		t.Errorf("email(keep_domain): %q", out)
	}
}

func TestMaskerSpecErrors(t *testing.T) {
	for _, tc := range []struct{ text, want string }{
		{"", "no method"},
		{"  ", "no method"},
		{"mask", `unknown method "mask"`},
		{"Redact", `unknown method "Redact"`},
		{"foo(1)", `unknown method "foo"`},
		{"partial", "want partial(F,L)"},
		{"partial()", "want partial(F,L)"},
		{"partial(1)", "want partial(F,L)"},
		{"partial(a,1)", "want partial(F,L)"},
		{"partial(1,2,3)", "want partial(F,L)"},
		{"partial(1,2", "no closing parenthesis"},
		{"partial(0,0)", "keeps nothing"},
		{"partial(-1,2)", "must not be negative"},
		{"email(yes)", "want email or email(keep_domain)"},
		{"redact(1)", "takes no parameters"},
		{"hash()", "takes no parameters"},
	} {
		_, err := mask.ParseMaskerSpec(tc.text)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseMaskerSpec(%q): %v, want an error with %q", tc.text, err, tc.want)
		}
		if _, err := mask.ByName(tc.text, maskKey); err == nil {
			t.Errorf("ByName(%q): no error", tc.text)
		}
	}
	for _, tc := range []struct {
		spec mask.MaskerSpec
		key  []byte
		want string
	}{
		{mask.MaskerSpec{Method: "redact", KeepFirst: 2}, nil, "apply only to partial"},
		{mask.MaskerSpec{Method: "email", KeepLast: 2}, nil, "apply only to partial"},
		{mask.MaskerSpec{Method: "partial", KeepFirst: 1, KeepDomain: true}, nil, "keep_domain applies only to email"},
		{mask.MaskerSpec{Method: "partial", KeepFirst: -1, KeepLast: 3}, nil, "must not be negative"},
		{mask.MaskerSpec{Method: "hash"}, nil, "at least 16"},
		{mask.MaskerSpec{Method: "digits"}, []byte("short-key"), "at least 16"},
		{mask.MaskerSpec{Method: "HASH"}, maskKey, "unknown method"},
	} {
		m, err := tc.spec.Masker(tc.key)
		if err == nil || m != nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v.Masker: %v, %v; want an error with %q", tc.spec, m, err, tc.want)
		}
		if len(tc.key) > 0 && err != nil && strings.Contains(err.Error(), string(tc.key)) {
			t.Errorf("%+v.Masker: the error quotes the key: %v", tc.spec, err)
		}
	}
	// Keys are ignored where they are not needed.
	if _, err := (mask.MaskerSpec{Method: "redact"}).Masker(nil); err != nil {
		t.Errorf("redact without a key: %v", err)
	}
}
