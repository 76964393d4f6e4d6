package mask

import (
	"fmt"
	"strings"
)

// The built-in detectors share these rules:
//
//   - They are hand-written scanners over the bytes (no regular
//     expressions): a few linear passes, bounded work at each position, no
//     allocation, no panic on any input, no state (each is an empty struct,
//     safe for concurrent use).
//   - They read ASCII: a byte of 0x80 or more is never a digit or a
//     separator, so invalid UTF-8 only ever hides or delimits a match, and
//     the e-mail detector counts such bytes as letters (internationalized
//     addresses) without validating them.
//   - A match is found anywhere in the value, but only where it stands on
//     its own: a number is not a match inside a longer number (a letter or
//     digit touches it, or it continues with the same separator or a
//     decimal point and more digits), a key is not a match inside a longer
//     word.
//   - A line feed is never part of a match: text joined by line feeds is
//     matched exactly where its lines are, so a detector that matches a
//     value also matches it with other lines around it.

// Detector names, as configuration spells them.
const (
	detectorEmail      = "email"
	detectorCard       = "card"
	detectorIBAN       = "iban"
	detectorSSN        = "ssn"
	detectorPhone      = "phone"
	detectorJWT        = "jwt"
	detectorAPIKey     = "api_key"
	detectorPrivateKey = "private_key"
)

// All returns the built-in detectors, in this order and with these names:
// EmailAddress ("email"), PaymentCard ("card"), IBAN ("iban"), USSSN
// ("ssn"), Phone ("phone"), JWT ("jwt"), APIKey ("api_key") and
// PrivateKey ("private_key"). The slice is new at each call: the caller
// may keep or change it.
func All() []Detector {
	return []Detector{
		EmailAddress(),
		PaymentCard(),
		IBAN(),
		USSSN(),
		Phone(),
		JWT(),
		APIKey(),
		PrivateKey(),
	}
}

// DetectorByName returns the built-in detector with that name, as All lists
// them ("email", "card", "iban", "ssn", "phone", "jwt", "api_key",
// "private_key"). Names are exact: lower case, no spaces. An unknown name
// is an error that lists the known ones.
func DetectorByName(name string) (Detector, error) {
	all := All()
	for _, d := range all {
		if d.Name() == name {
			return d, nil
		}
	}
	names := make([]string, len(all))
	for i, d := range all {
		names[i] = d.Name()
	}
	return nil, fmt.Errorf("mask: unknown detector %q (the detectors are %s)", name, strings.Join(names, ", "))
}

// DetectAny reports whether one of ds detects something in b. It tries them
// in order and stops at the first that does; nil entries are skipped.
func DetectAny(ds []Detector, b []byte) bool {
	for _, d := range ds {
		if d != nil && d.Detect(b) {
			return true
		}
	}
	return false
}

// The classes of bytes in detClass.
const (
	detClassDigit = 1 << iota // 0-9
	detClassUpper             // A-Z
	detClassLower             // a-z
	detClassB64               // '-' and '_', the other base64url characters

	detClassAlnum = detClassDigit | detClassUpper | detClassLower
)

// detClass is the class of each byte: the scanners read it once a byte
// instead of comparing it with several ranges.
var detClass = func() (t [256]uint8) {
	for c := '0'; c <= '9'; c++ {
		t[c] = detClassDigit
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = detClassUpper
		t[c+'a'-'A'] = detClassLower
	}
	t['-'], t['_'] = detClassB64, detClassB64
	return t
}()

// detIsDigit reports whether c is an ASCII digit.
func detIsDigit(c byte) bool { return c-'0' < 10 }

// detIsAlpha reports whether c is an ASCII letter.
func detIsAlpha(c byte) bool { return (c|0x20)-'a' < 26 }

// detIsUpper reports whether c is an ASCII upper-case letter.
func detIsUpper(c byte) bool { return c-'A' < 26 }

// detIsLower reports whether c is an ASCII lower-case letter.
func detIsLower(c byte) bool { return c-'a' < 26 }

// detIsAlnum reports whether c is an ASCII letter or digit.
func detIsAlnum(c byte) bool { return detClass[c]&detClassAlnum != 0 }

// detIsB64URL reports whether c is in the base64url alphabet
// (RFC 4648 §5, without padding).
func detIsB64URL(c byte) bool { return detClass[c] != 0 }

// detDigits reports whether b is all ASCII digits.
func detDigits(b []byte) bool {
	for _, c := range b {
		if !detIsDigit(c) {
			return false
		}
	}
	return true
}

// detAtoi is the value of b, which is at most 9 ASCII digits.
func detAtoi(b []byte) int {
	n := 0
	for _, c := range b {
		n = n*10 + int(c-'0')
	}
	return n
}

// detNumberStart reports whether a formatted number (an SSN, a phone
// number) that uses the separator sep may start at b[i]: no letter or
// digit before it, and it does not continue a number (a digit then a
// dash, dot, slash or sep).
func detNumberStart(b []byte, i int, sep byte) bool {
	if i == 0 {
		return true
	}
	p := b[i-1]
	if detIsAlnum(p) {
		return false
	}
	if (p == '-' || p == '.' || p == '/' || p == sep) && i >= 2 && detIsDigit(b[i-2]) {
		return false
	}
	return true
}

// detNumberEnd reports whether a formatted number that uses the separator
// sep may end before b[j]: no letter or digit after it, and it is not
// continued (a dash, dot, slash or sep, then a digit).
func detNumberEnd(b []byte, j int, sep byte) bool {
	if j >= len(b) {
		return true
	}
	c := b[j]
	if detIsAlnum(c) {
		return false
	}
	if (c == '-' || c == '.' || c == '/' || c == sep) && j+1 < len(b) && detIsDigit(b[j+1]) {
		return false
	}
	return true
}
