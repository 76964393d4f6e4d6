package mask

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// MaskerSpec names a built-in masker and its parameters, as configuration
// gives them (the yaml tags are the keys). Its text form (see String and
// ParseMaskerSpec) is the method alone, or partial(F,L) and
// email(keep_domain).
type MaskerSpec struct {
	// Method is redact (Redact), partial (Partial), email (Email), hash
	// (KeyedHash), null (Null) or digits (Digits).
	Method string `yaml:"method"`
	// KeepFirst and KeepLast, for partial only, are the characters kept at
	// the start and at the end: not negative, not both 0.
	KeepFirst int `yaml:"keep_first"`
	KeepLast  int `yaml:"keep_last"`
	// KeepDomain, for email only, keeps the domain of addresses.
	KeepDomain bool `yaml:"keep_domain"`
}

// The methods of MaskerSpec.
const (
	methodRedact  = "redact"
	methodPartial = "partial"
	methodEmail   = "email"
	methodHash    = "hash"
	methodNull    = "null"
	methodDigits  = "digits"
)

// Validate checks the method and its parameters (not the key: see
// Masker). The error names the problem, never a key.
func (s MaskerSpec) Validate() error {
	if err := checkMethod(s.Method); err != nil {
		return err
	}
	var errs []error
	if s.Method == methodPartial {
		if s.KeepFirst < 0 || s.KeepLast < 0 {
			errs = append(errs, fmt.Errorf("mask: masker partial: keep_first (%d) and keep_last (%d) must not be negative", s.KeepFirst, s.KeepLast))
		} else if s.KeepFirst == 0 && s.KeepLast == 0 {
			errs = append(errs, errors.New("mask: masker partial: keeps nothing: set keep_first or keep_last (or use redact)"))
		}
	} else if s.KeepFirst != 0 || s.KeepLast != 0 {
		errs = append(errs, fmt.Errorf("mask: masker %s: keep_first and keep_last apply only to partial", s.Method))
	}
	if s.KeepDomain && s.Method != methodEmail {
		errs = append(errs, fmt.Errorf("mask: masker %s: keep_domain applies only to email", s.Method))
	}
	return errors.Join(errs...)
}

func checkMethod(method string) error {
	switch method {
	case methodRedact, methodPartial, methodEmail, methodHash, methodNull, methodDigits:
		return nil
	case "":
		return errors.New("mask: masker: no method (want redact, partial, email, hash, null or digits)")
	}
	return fmt.Errorf("mask: masker: unknown method %q (want redact, partial, email, hash, null or digits)", method)
}

// Masker checks s (see Validate) and builds its masker. hash and digits
// need key, of at least MinKeySize bytes (it is copied); the other methods
// ignore it.
func (s MaskerSpec) Masker(key []byte) (Masker, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	switch s.Method {
	case methodRedact:
		return Redact(), nil
	case methodPartial:
		return Partial(s.KeepFirst, s.KeepLast), nil
	case methodEmail:
		return Email(s.KeepDomain), nil
	case methodHash:
		return KeyedHash(key)
	case methodDigits:
		return Digits(key)
	}
	return Null(), nil
}

// String is the text form of s: "partial(2,4)", "email(keep_domain)", or
// the method alone. ParseMaskerSpec reads it back.
func (s MaskerSpec) String() string {
	switch {
	case s.Method == methodPartial || s.KeepFirst != 0 || s.KeepLast != 0:
		return fmt.Sprintf("%s(%d,%d)", s.Method, s.KeepFirst, s.KeepLast)
	case s.KeepDomain:
		return s.Method + "(keep_domain)"
	}
	return s.Method
}

// ParseMaskerSpec reads the text form of a MaskerSpec: a method
// ("redact", "email", "hash", "null", "digits"), "partial(F,L)" with F and
// L the characters kept at the start and at the end, or
// "email(keep_domain)". It checks the result as Validate does.
func ParseMaskerSpec(text string) (MaskerSpec, error) {
	t := strings.TrimSpace(text)
	method, args, hasArgs := strings.Cut(t, "(")
	method = strings.TrimSpace(method)
	if hasArgs {
		var ok bool
		if args, ok = strings.CutSuffix(args, ")"); !ok {
			return MaskerSpec{}, fmt.Errorf("mask: masker %q: no closing parenthesis", text)
		}
	}
	if err := checkMethod(method); err != nil {
		return MaskerSpec{}, err
	}
	s := MaskerSpec{Method: method}
	switch {
	case method == methodPartial:
		first, last, ok := strings.Cut(args, ",")
		f, err1 := strconv.Atoi(strings.TrimSpace(first))
		l, err2 := strconv.Atoi(strings.TrimSpace(last))
		if !ok || err1 != nil || err2 != nil {
			return MaskerSpec{}, fmt.Errorf("mask: masker %q: want partial(F,L), F and L the characters kept at the start and at the end", text)
		}
		s.KeepFirst, s.KeepLast = f, l
	case method == methodEmail && hasArgs:
		if strings.TrimSpace(args) != "keep_domain" {
			return MaskerSpec{}, fmt.Errorf("mask: masker %q: want email or email(keep_domain)", text)
		}
		s.KeepDomain = true
	case hasArgs:
		return MaskerSpec{}, fmt.Errorf("mask: masker %q: %s takes no parameters", text, method)
	}
	if err := s.Validate(); err != nil {
		return MaskerSpec{}, err
	}
	return s, nil
}

// ByName builds the masker named by the text form of a MaskerSpec (see
// ParseMaskerSpec): "redact", "partial(0,4)", "email(keep_domain)",
// "hash", "null", "digits". key is for hash and digits (see
// MaskerSpec.Masker).
func ByName(name string, key []byte) (Masker, error) {
	s, err := ParseMaskerSpec(name)
	if err != nil {
		return nil, err
	}
	return s.Masker(key)
}
