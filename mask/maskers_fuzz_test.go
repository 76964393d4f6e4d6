package mask_test

import (
	"bytes"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/pgwarden/pgwarden/mask"
)

// fuzzMaskTypes are the types FuzzMaskers draws from (typ modulo their count).
var fuzzMaskTypes = []uint32{typText, typVarchar, typBpchar, typName, typUnknown, typInt2, typInt4, typInt8, typNumeric, typBytea, typJSON, typJSONB, typTimestamp, typUUID}

// FuzzMaskers feeds every built-in masker arbitrary values of a few types,
// in both formats: no masker may panic; text-like types get valid UTF-8,
// integer types integers of their width; Redact, KeyedHash and Null never
// give back a long input; Digits keeps the non-digit characters; keyed
// maskers are deterministic; errors come only from malformed integers and
// numerics, and never quote the value.
func FuzzMaskers(f *testing.F) {
	// The seed corpus is in testdata/fuzz/FuzzMaskers.
	hash, digits := keyedMaskers(f)
	maskers := []struct {
		name string
		m    mask.Masker
		// hides: the output never holds the input (when long enough).
		hides bool
	}{
		{"redact", mask.Redact(), true},
		{"null", mask.Null(), true},
		{"hash", hash, true},
		{"partial", mask.Partial(2, 3), false},
		{"email", mask.Email(true), false},
		{"digits", digits, false},
	}
	f.Fuzz(func(t *testing.T, typ byte, binary bool, value []byte) {
		c := mask.Cell{Type: fuzzMaskTypes[int(typ)%len(fuzzMaskTypes)], Format: mask.Text, Value: value}
		if binary {
			c.Format = mask.Binary
		}
		textLike := mask.TextLike(c.Type)
		for _, mk := range maskers {
			out, null, err := maskOne(t, mk.m, c)
			if err != nil {
				malformed := (mk.name == "hash" || mk.name == "digits") && intTypeBits(c.Type) != 0 ||
					mk.name == "digits" && c.Type == typNumeric && c.Format == mask.Text
				if !malformed {
					t.Fatalf("%s on type %d format %d %q: %v", mk.name, c.Type, c.Format, value, err)
				}
				if len(value) >= 8 && strings.Contains(err.Error(), string(value)) {
					t.Fatalf("%s: the error quotes the value: %v", mk.name, err)
				}
				continue
			}
			if null {
				if textLike && mk.name != "null" {
					t.Fatalf("%s on text-like type %d: NULL", mk.name, c.Type)
				}
				continue
			}
			switch {
			case textLike:
				if !utf8.Valid(out) || bytes.IndexByte(out, 0) >= 0 {
					t.Fatalf("%s on type %d %q: invalid text %q", mk.name, c.Type, value, out)
				}
			case intTypeBits(c.Type) != 0:
				checkIntOutput(t, mk.name, c, out)
			case c.Type == typNumeric && c.Format == mask.Text && mk.name == "digits":
				if !numericTextRE.Match(out) || !sameDigitShape(string(value), string(out)) {
					t.Fatalf("digits on numeric %q: %q", value, out)
				}
			default:
				t.Fatalf("%s on type %d format %d: %q, want NULL", mk.name, c.Type, c.Format, out)
			}
			if mk.hides && len(value) >= 8 && bytes.Contains(out, value) {
				t.Fatalf("%s on %q: %q holds the input", mk.name, value, out)
			}
			again, _, _ := maskOne(t, mk.m, c)
			if !bytes.Equal(out, again) {
				t.Fatalf("%s on %q: %q, then %q", mk.name, value, out, again)
			}
			if !textLike {
				continue
			}
			switch mk.name {
			case "redact":
				if string(out) != "***" {
					t.Fatalf("redact on %q: %q", value, out)
				}
			case "hash":
				if len(out) != 32 || strings.Trim(string(out), "0123456789abcdef") != "" {
					t.Fatalf("hash on %q: %q", value, out)
				}
			case "partial":
				if !partialKeptFrom(string(out), value, 2, 3) {
					t.Fatalf("partial(2,3) on %q: %q", value, out)
				}
			case "email":
				domain, ok := strings.CutPrefix(string(out), "***@")
				if string(out) != "***" && (!ok || !bytes.HasSuffix(bytes.TrimRight(value, " "), []byte("@"+domain))) {
					t.Fatalf("email on %q: %q", value, out)
				}
			case "digits":
				clean := utf8.Valid(value) && bytes.IndexByte(value, 0) < 0
				hasDigit := bytes.ContainsAny(value, "0123456789")
				switch {
				case !hasDigit && string(out) != "***":
					t.Fatalf("digits on %q (no digit): %q", value, out)
				case hasDigit && clean && !sameDigitShape(string(value), string(out)):
					t.Fatalf("digits on %q: %q does not keep the format", value, out)
				case hasDigit && utf8.RuneCount(out) != utf8.RuneCount(value):
					t.Fatalf("digits on %q: %q has another length", value, out)
				}
			}
		}
	})
}

// partialKeptFrom reports whether out is at most first characters of in, then
// "***", then at most last characters of in (U+FFFD standing for any
// byte). in may hold '*' itself: every place of "***" in out is tried.
func partialKeptFrom(out string, in []byte, first, last int) bool {
	for i := 0; i+3 <= len(out); i++ {
		if out[i:i+3] != "***" {
			continue
		}
		head, tail := out[:i], out[i+3:]
		if utf8.RuneCountInString(head) > first || utf8.RuneCountInString(tail) > last {
			continue
		}
		ok := true
		for _, part := range strings.Split(head+"\uFFFD"+tail, "\uFFFD") {
			ok = ok && bytes.Contains(in, []byte(part))
		}
		if ok {
			return true
		}
	}
	return false
}
