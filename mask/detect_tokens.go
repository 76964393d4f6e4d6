package mask

import (
	"bytes"
	"strings"
)

// JWT returns a Detector, named "jwt", that finds a JSON Web Token (a JWS
// or JWE in compact serialization, RFC 7515 and 7516) anywhere in a value.
//
// It matches a JOSE header: a base64url segment (unpadded, at least 14
// characters) that starts with "eyJ" and ends so that it decodes to a JSON
// object, starting with `{"` and ending with '}' (the header is always
// such an object, and JOSE libraries write it without a space after the
// brace), with no base64url character before it ("Bearer eyJ...",
// "token=eyJ..."). Then either:
//   - JWS: a dot, a payload segment that decodes to a JSON object
//     (starting with '{' and ending with '}': "eyJ..." or "e30" for {}),
//     a dot, and a signature (any base64url characters, none for an
//     unsecured JWT);
//   - JWE: four more segments after dots (an encrypted key, possibly
//     empty, then the initialization vector, ciphertext and tag, not
//     empty).
//
// It deliberately does not match: a lone base64url or base64 blob, even of
// JSON ("eyJmb28iOiJiYXIifQ==", with no dots), two segments, a header that
// does not start with `{"` or does not end with '}', padded ('=')
// segments, and a JWS whose payload is not a JSON object (a detached or
// non-JSON payload, which is not a JWT).
func JWT() Detector { return jwtDetector{} }

type jwtDetector struct{}

func (jwtDetector) Name() string { return detectorJWT }

// detJWTMinHeader is the length of the shortest header with an "alg"
// member, `{"alg":""}`, in base64url.
const detJWTMinHeader = 14

var detJWTPrefix = []byte("eyJ")

func (jwtDetector) Detect(b []byte) bool {
	// A token starts at the first character of a base64url run, and reads
	// at most that run and the four after it: each run is read by at
	// most five starts, so the whole is linear.
	for off := 0; off < len(b); {
		k := bytes.Index(b[off:], detJWTPrefix)
		if k < 0 {
			return false
		}
		i := off + k
		if (i == 0 || !detIsB64URL(b[i-1])) && detJWTAt(b, i) {
			return true
		}
		off = i + 1
	}
	return false
}

// detB64Run returns the end of the run of base64url characters that starts
// at b[i].
func detB64Run(b []byte, i int) int {
	for i < len(b) && detIsB64URL(b[i]) {
		i++
	}
	return i
}

// detJWTAt reports whether a token starts at b[i], which starts with "eyJ".
func detJWTAt(b []byte, i int) bool {
	h := detB64Run(b, i)
	if h-i < detJWTMinHeader || !detB64JSONObject(b[i:h]) || h >= len(b) || b[h] != '.' {
		return false
	}
	p := h + 1
	q := detB64Run(b, p)
	if q < len(b) && b[q] == '.' && q-p >= 3 && b[p] == 'e' && detB64Value(b[p+1])>>4 == 3 && detB64JSONObject(b[p:q]) {
		return true // JWS
	}
	// JWE: the encrypted key b[p:q], then three segments that are not
	// empty.
	for range 3 {
		if q >= len(b) || b[q] != '.' {
			return false
		}
		p = q + 1
		q = detB64Run(b, p)
		if q == p {
			return false
		}
	}
	return true
}

// detB64JSONObject reports whether the base64url segment s, whose first
// byte decodes to '{', can decode and ends with '}'.
func detB64JSONObject(s []byte) bool {
	n := len(s)
	var last byte
	switch n % 4 {
	case 0:
		last = detB64Value(s[n-2])<<6 | detB64Value(s[n-1])
	case 2:
		last = detB64Value(s[n-2])<<2 | detB64Value(s[n-1])>>4
	case 3:
		last = detB64Value(s[n-2])<<4 | detB64Value(s[n-1])>>2
	default: // 1: not base64
		return false
	}
	return last == '}'
}

// detB64Value is the 6-bit value of the base64url character c.
func detB64Value(c byte) byte {
	switch {
	case detIsUpper(c):
		return c - 'A'
	case detIsLower(c):
		return c - 'a' + 26
	case detIsDigit(c):
		return c - '0' + 52
	case c == '-':
		return 62
	}
	return 63 // '_'
}

// APIKey returns a Detector, named "api_key", that finds a well-known
// kind of API secret anywhere in a value, by its fixed prefix and shape:
//
//	AWS access key id      AKIA or ASIA, then exactly 16 upper-case letters or digits
//	GitHub token           ghp_, gho_, ghu_, ghs_ or ghr_, then 36 or more letters or digits;
//	                       github_pat_, then 40 or more letters, digits or '_'
//	GitLab token           glpat-, then 20 or more letters, digits, '-' or '_'
//	Slack token            xoxa-, xoxb-, xoxe-, xoxp-, xoxr-, xoxs- or xapp-, then 10 or
//	                       more letters, digits or '-'
//	Stripe secret key      sk_live_, rk_live_, sk_test_ or rk_test_, then 24 or more
//	                       letters or digits
//	Google API key         AIza, then exactly 35 letters, digits, '-' or '_'
//	OpenAI, Anthropic      sk-, then 32 letters, digits, '-' or '_' among which an
//	                       upper-case letter, a lower-case letter and a digit
//	                       (sk-proj-..., sk-svcacct-..., sk-ant-api03-..., legacy sk-...)
//	npm token              npm_, then 36 or more letters or digits
//	SendGrid key           SG., 22 letters, digits, '-' or '_', '.', 43 of them
//	PyPI token             pypi-AgEIcHlwaS5vcmc, then 50 or more letters, digits, '-' or '_'
//
// Prefixes are case-sensitive, and a key starts a word: no ASCII letter or
// digit before it. Where the length is exact, no character of the key's
// alphabet may follow it.
//
// It deliberately does not match secrets without a recognizable prefix
// (AWS secret access keys, generic hex or base64 tokens, passwords), which
// cannot be told from other random strings; publishable keys (Stripe
// pk_live_, pk_test_); nor URLs with embedded credentials.
func APIKey() Detector { return apiKeyDetector{} }

type apiKeyDetector struct{}

func (apiKeyDetector) Name() string { return detectorAPIKey }

func (apiKeyDetector) Detect(b []byte) bool {
	// A key starts a word (a run of ASCII letters and digits). Each word
	// start costs at most a key's prefix and the bounded number of
	// characters its shape requires; the rest of the word is skipped.
	for i := 0; i < len(b); {
		if !detIsAlnum(b[i]) {
			i++
			continue
		}
		if detAPIKeyFirst(b[i]) && detAPIKeyAt(b[i:]) {
			return true
		}
		for i++; i < len(b) && detIsAlnum(b[i]); i++ {
		}
	}
	return false
}

// detAPIKeyFirst reports whether c is the first character of a prefix
// that detAPIKeyAt knows.
func detAPIKeyFirst(c byte) bool {
	switch c {
	case 'A', 'g', 'x', 's', 'r', 'n', 'S', 'p':
		return true
	}
	return false
}

// The alphabets of API keys.
const (
	detKeyUpperDigit = iota // A-Z 0-9
	detKeyAlnum             // A-Z a-z 0-9
	detKeyAlnumUnder        // A-Z a-z 0-9 _
	detKeyB64URL            // A-Z a-z 0-9 - _
	detKeyAlnumDash         // A-Z a-z 0-9 -
)

// detKeyByte reports whether c is in the alphabet class.
func detKeyByte(class int, c byte) bool {
	switch class {
	case detKeyUpperDigit:
		return detIsUpper(c) || detIsDigit(c)
	case detKeyAlnum:
		return detIsAlnum(c)
	case detKeyAlnumUnder:
		return detIsAlnum(c) || c == '_'
	case detKeyB64URL:
		return detIsB64URL(c)
	case detKeyAlnumDash:
		return detIsAlnum(c) || c == '-'
	}
	return false
}

// detKeyBody reports whether s starts with at least n characters of the
// alphabet class and, when exact, exactly n (the next one is not of it).
func detKeyBody(s []byte, class, n int, exact bool) bool {
	if len(s) < n {
		return false
	}
	for _, c := range s[:n] {
		if !detKeyByte(class, c) {
			return false
		}
	}
	return !exact || len(s) == n || !detKeyByte(class, s[n])
}

// detHasPrefix reports whether s starts with prefix.
func detHasPrefix(s []byte, prefix string) bool {
	return len(s) >= len(prefix) && string(s[:len(prefix)]) == prefix
}

// detAPIKeyAt reports whether s starts with an API key.
func detAPIKeyAt(s []byte) bool {
	if len(s) < 8 {
		return false
	}
	switch s[0] {
	case 'A':
		if detHasPrefix(s, "AKIA") || detHasPrefix(s, "ASIA") {
			return detKeyBody(s[4:], detKeyUpperDigit, 16, true)
		}
		if detHasPrefix(s, "AIza") {
			return detKeyBody(s[4:], detKeyB64URL, 35, true)
		}
	case 'g':
		if s[1] == 'h' && (s[2] == 'p' || s[2] == 'o' || s[2] == 'u' || s[2] == 's' || s[2] == 'r') && s[3] == '_' {
			return detKeyBody(s[4:], detKeyAlnum, 36, false)
		}
		if detHasPrefix(s, "github_pat_") {
			return detKeyBody(s[11:], detKeyAlnumUnder, 40, false)
		}
		if detHasPrefix(s, "glpat-") {
			return detKeyBody(s[6:], detKeyB64URL, 20, false)
		}
	case 'x':
		if detHasPrefix(s, "xox") && strings.IndexByte("abeprs", s[3]) >= 0 && s[4] == '-' {
			return detKeyBody(s[5:], detKeyAlnumDash, 10, false)
		}
		if detHasPrefix(s, "xapp-") {
			return detKeyBody(s[5:], detKeyAlnumDash, 10, false)
		}
	case 's', 'r':
		if detHasPrefix(s[1:], "k_live_") || detHasPrefix(s[1:], "k_test_") {
			return detKeyBody(s[8:], detKeyAlnum, 24, false)
		}
		if s[0] == 's' && s[1] == 'k' && s[2] == '-' {
			return detOpenAIKey(s[3:])
		}
	case 'n':
		if detHasPrefix(s, "npm_") {
			return detKeyBody(s[4:], detKeyAlnum, 36, false)
		}
	case 'S':
		if detHasPrefix(s, "SG.") && detKeyBody(s[3:], detKeyB64URL, 22, true) && len(s) > 25 && s[25] == '.' {
			return detKeyBody(s[26:], detKeyB64URL, 43, true)
		}
	case 'p':
		if detHasPrefix(s, "pypi-AgEIcHlwaS5vcmc") {
			return detKeyBody(s[20:], detKeyB64URL, 50, false)
		}
	}
	return false
}

// detOpenAIKeyLen is the part of an "sk-" key that detOpenAIKey reads.
const detOpenAIKeyLen = 32

// detOpenAIKey reports whether s, after "sk-", starts with 32 base64url
// characters among which an upper-case letter, a lower-case letter and a
// digit: random, not a kebab-case word.
func detOpenAIKey(s []byte) bool {
	if len(s) < detOpenAIKeyLen {
		return false
	}
	var upper, lower, digit bool
	for _, c := range s[:detOpenAIKeyLen] {
		switch {
		case detIsUpper(c):
			upper = true
		case detIsLower(c):
			lower = true
		case detIsDigit(c):
			digit = true
		case c != '-' && c != '_':
			return false
		}
	}
	return upper && lower && digit
}

// PrivateKey returns a Detector, named "private_key", that finds a private
// key block anywhere in a value, by one of its marker lines:
//   - a PEM or OpenSSH line "-----BEGIN <label>-----" or "-----END
//     <label>-----" whose label is "PRIVATE KEY" or ends with " PRIVATE
//     KEY" (RSA, EC, DSA, OPENSSH, ENCRYPTED, ...; upper-case letters,
//     digits and spaces, 64 bytes at most), or is "PGP PRIVATE KEY BLOCK";
//   - the first line of an SSH.com key, "---- BEGIN SSH2 ENCRYPTED PRIVATE
//     KEY ----";
//   - the first line of a PuTTY key file, "PuTTY-User-Key-File-".
//
// One marker is enough: the body and the other marker are not required (a
// key cut in two still is a secret, and so is each half).
//
// It deliberately does not match other PEM blocks (PUBLIC KEY, RSA PUBLIC
// KEY, CERTIFICATE, CERTIFICATE REQUEST, X509 CRL, PGP PUBLIC KEY BLOCK,
// PGP SIGNATURE, EC PARAMETERS, ...), OpenSSH public keys ("ssh-ed25519
// AAAA..."), base64 key material without a marker line, nor markers in
// lower case or with another number of dashes.
func PrivateKey() Detector { return privateKeyDetector{} }

type privateKeyDetector struct{}

func (privateKeyDetector) Name() string { return detectorPrivateKey }

var (
	detPEMDashes  = []byte("-----")
	detSSH2Header = []byte("---- BEGIN SSH2 ENCRYPTED PRIVATE KEY ----")
	detPuTTY      = []byte("PuTTY-User-Key-File-")
)

// detPEMMaxLabel bounds the label of a PEM marker line.
const detPEMMaxLabel = 64

func (privateKeyDetector) Detect(b []byte) bool {
	// Each "-----" reads at most "BEGIN ", a label of 64 bytes and the
	// closing dashes.
	for off := 0; off < len(b); {
		k := bytes.Index(b[off:], detPEMDashes)
		if k < 0 {
			break
		}
		i := off + k + len(detPEMDashes)
		off += k + 1
		switch {
		case detHasPrefix(b[i:], "BEGIN "):
			i += len("BEGIN ")
		case detHasPrefix(b[i:], "END "):
			i += len("END ")
		default:
			continue
		}
		j := i
		for j < len(b) && j-i < detPEMMaxLabel && (detIsUpper(b[j]) || detIsDigit(b[j]) || b[j] == ' ') {
			j++
		}
		if bytes.HasPrefix(b[j:], detPEMDashes) && detPrivateLabel(b[i:j]) {
			return true
		}
	}
	return bytes.Contains(b, detSSH2Header) || bytes.Contains(b, detPuTTY)
}

// detPrivateLabel reports whether label is the label of a private key
// block.
func detPrivateLabel(label []byte) bool {
	const suffix = " PRIVATE KEY"
	return string(label) == "PRIVATE KEY" || string(label) == "PGP PRIVATE KEY BLOCK" ||
		(len(label) > len(suffix) && string(label[len(label)-len(suffix):]) == suffix)
}
