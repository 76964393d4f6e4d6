package mask

import "strings"

// PaymentCard returns a Detector, named "card", that finds a payment card
// number (PAN) anywhere in a value.
//
// A candidate is 13 to 19 digits, either contiguous ("4111111111111111")
// or in groups joined by single spaces or by single dashes, the same
// separator throughout, the first group of 4 digits and the others of 3 to
// 6 ("4111 1111 1111 1111", "3782-822463-10005", "6212 3456 7890 1234
// 567"). It matches when the digits pass the Luhn check and start with an
// issuer prefix of a network, at a length the network issues:
//
//	Visa              4                      13, 16 or 19 digits
//	Mastercard        51-55, 2221-2720       16
//	American Express  34, 37                 15
//	Discover          6011, 644-649, 65      16 to 19
//	JCB               3528-3589              16 to 19
//	Diners Club       300-305, 36, 38-39     14 to 19
//	UnionPay          62                     16 to 19
//
// The digits must stand on their own: no letter or digit touches them (a
// card number is not found inside a longer digit run, a hex digest or an
// identifier), and no decimal point joins them to more digits ("0.4111…"
// is a fraction). Any run of consecutive groups is a candidate, so a card
// followed by a space and its CVV or another number is still found
// ("4111 1111 1111 1111 123"); a contiguous run of 20 digits or more never
// is.
//
// It deliberately does not match other networks (Maestro 50/56-58, Mir,
// RuPay, Dankort, ...), other groupings (dots, several spaces, groups
// smaller than 3 digits), nor Luhn-valid numbers with another prefix or
// length (so 15-digit order ids, 13-digit millisecond timestamps, ISBNs
// and IMEIs, whose prefixes are not card prefixes, are not cards).
func PaymentCard() Detector { return cardDetector{} }

type cardDetector struct{}

func (cardDetector) Name() string { return detectorCard }

// detCardMaxGroups bounds the groups of a grouped card number: the first
// of 4 digits and the others of 3 or more make at most 6 in 19 digits.
const detCardMaxGroups = 6

// detCardGroup is a run of 3 to 6 digits in a chain of runs joined by
// single separators.
type detCardGroup struct {
	start, end int
	sep        byte // the separator before it, 0 for the first of a chain
}

func (cardDetector) Detect(b []byte) bool {
	// One pass over the digit runs. A run of 13-19 digits is a candidate
	// alone; runs of 3-6 digits form chains (the last detCardMaxGroups
	// are kept), and each run is checked as the last group of the
	// windows ending at it. Each run costs a bounded amount of work.
	var chain [detCardMaxGroups]detCardGroup
	n := 0
	for i := 0; i < len(b); {
		if !detIsDigit(b[i]) {
			i++
			continue
		}
		start := i
		for i < len(b) && detIsDigit(b[i]) {
			i++
		}
		end := i
		switch l := end - start; {
		case l >= 13 && l <= 19:
			n = 0
			if detCardStart(b, start) && detCardEnd(b, end) && detCardValid(b[start:end]) {
				return true
			}
		case l >= 3 && l <= 6:
			var sep byte
			if n > 0 && chain[n-1].end+1 == start && (b[start-1] == ' ' || b[start-1] == '-') {
				sep = b[start-1]
			} else {
				n = 0
			}
			if n == len(chain) {
				copy(chain[:], chain[1:])
				n--
			}
			chain[n] = detCardGroup{start: start, end: end, sep: sep}
			n++
			if detCardWindows(b, chain[:n]) {
				return true
			}
		default:
			n = 0
		}
	}
	return false
}

// detCardWindows checks the windows of two groups or more that end at the
// last group of chain.
func detCardWindows(b []byte, chain []detCardGroup) bool {
	last := len(chain) - 1
	if last == 0 || !detCardEnd(b, chain[last].end) {
		return false
	}
	sep := chain[last].sep
	total := chain[last].end - chain[last].start
	for j := last - 1; j >= 0; j-- {
		if chain[j+1].sep != sep {
			return false
		}
		g := chain[j]
		total += g.end - g.start
		if total > 19 {
			return false
		}
		if total < 13 || g.end-g.start != 4 || !detCardStart(b, g.start) {
			continue
		}
		var digits [19]byte
		k := 0
		for _, h := range chain[j:] {
			k += copy(digits[k:], b[h.start:h.end])
		}
		if detCardValid(digits[:k]) {
			return true
		}
	}
	return false
}

// detCardStart reports whether a card number may start at b[i], the first
// digit of a run: no letter before it, nor a digit and a decimal point.
func detCardStart(b []byte, i int) bool {
	if i == 0 {
		return true
	}
	p := b[i-1]
	return !detIsAlpha(p) && !(p == '.' && i >= 2 && detIsDigit(b[i-2]))
}

// detCardEnd reports whether a card number may end before b[j], after the
// last digit of a run: no letter after it, nor a decimal point and a
// digit.
func detCardEnd(b []byte, j int) bool {
	if j >= len(b) {
		return true
	}
	c := b[j]
	return !detIsAlpha(c) && !(c == '.' && j+1 < len(b) && detIsDigit(b[j+1]))
}

// detCardValid reports whether d, 13 to 19 ASCII digits, has a known
// issuer prefix at a length the issuer uses and passes the Luhn check.
func detCardValid(d []byte) bool {
	return detCardIssuer(d) && detLuhn(d)
}

// detCardIssuer reports whether d, 13 to 19 ASCII digits, starts with an
// issuer prefix of a known network at a length it issues.
func detCardIssuer(d []byte) bool {
	n := len(d)
	if n < 13 || n > 19 {
		return false
	}
	p2 := detAtoi(d[:2])
	p3 := detAtoi(d[:3])
	p4 := detAtoi(d[:4])
	switch {
	case d[0] == '4': // Visa
		return n == 13 || n == 16 || n == 19
	case 51 <= p2 && p2 <= 55, 2221 <= p4 && p4 <= 2720: // Mastercard
		return n == 16
	case p2 == 34, p2 == 37: // American Express
		return n == 15
	case p4 == 6011, 644 <= p3 && p3 <= 649, p2 == 65: // Discover
		return n >= 16
	case 3528 <= p4 && p4 <= 3589: // JCB
		return n >= 16
	case 300 <= p3 && p3 <= 305, p2 == 36, p2 == 38, p2 == 39: // Diners Club
		return n >= 14
	case p2 == 62: // UnionPay
		return n >= 16
	}
	return false
}

// detLuhn reports whether the ASCII digits d pass the Luhn check.
func detLuhn(d []byte) bool {
	sum := 0
	double := false
	for i := len(d) - 1; i >= 0; i-- {
		v := int(d[i] - '0')
		if double {
			v *= 2
			if v > 9 {
				v -= 9
			}
		}
		sum += v
		double = !double
	}
	return sum%10 == 0
}

// IBAN returns a Detector, named "iban", that finds an International Bank
// Account Number (ISO 13616) anywhere in a value.
//
// It matches two letters that are the country code of an IBAN country of
// the SWIFT IBAN registry (release 102, 2026: the SEPA countries and the
// others, 89 codes), two check digits from 02 to 98, and the
// letters and digits of the account (the BBAN), at exactly the registry's
// length for that country (22 for DE and GB, 27 for FR, ...), with the
// mod-97 check (ISO 7064 MOD 97-10) giving 1. The IBAN is either compact
// ("DE89370400440532013000") or in the printed form: groups of 4 separated
// by single spaces, the last of 1 to 4 ("DE89 3704 0044 0532 0130 00").
// Letters may be upper or lower case. No letter or digit touches it.
//
// It deliberately does not match: a wrong check digit, a wrong length for
// the country (the registry length, not a range), a country code not in
// the registry (territories such as GF, JE or AX have FR, GB and FI
// IBANs), other groupings (dashes, groups of other sizes). It does not
// check the account's national format (the BBAN structure): the length and
// the check digits already make a random match unlikely (about 1 in 97
// for a string of the right shape).
func IBAN() Detector { return ibanDetector{} }

type ibanDetector struct{}

func (ibanDetector) Name() string { return detectorIBAN }

// detIBANRegistry is the IBAN length of each country of the SWIFT IBAN
// registry (release 102, June 2026).
const detIBANRegistry = "" +
	"AD24 AE23 AL28 AT20 AZ28 BA20 BE16 BG22 BH22 BI27 BR29 BY28 CH21 CR22 CY28 CZ24 " +
	"DE22 DJ27 DK18 DO28 EE20 EG29 ES24 FI18 FK18 FO18 FR27 GB22 GE22 GI23 GL18 GR27 " +
	"GT28 HN28 HR21 HU28 IE22 IL23 IQ23 IS26 IT27 JO30 KW30 KZ20 LB28 LC32 LI21 LT20 " +
	"LU20 LV21 LY25 MC27 MD24 ME22 MK19 MN20 MR27 MT31 MU30 NI28 NL18 NO15 OM23 PK24 " +
	"PL28 PS29 PT25 QA29 RO24 RS22 RU33 SA24 SC31 SD18 SE24 SI19 SK24 SM27 SO23 ST25 " +
	"SV28 TL23 TN24 TR26 UA29 VA22 VG24 XK20 YE30"

// detIBANLengths is detIBANRegistry indexed by the two letters: 0 for a
// code that is not in the registry.
var detIBANLengths = func() (t [26 * 26]uint8) {
	for _, e := range strings.Fields(detIBANRegistry) {
		t[int(e[0]-'A')*26+int(e[1]-'A')] = uint8(detAtoi([]byte(e[2:])))
	}
	return t
}()

// detIBANMin is the shortest IBAN (Norway).
const detIBANMin = 15

// detIBANLength is the IBAN length of the country with the letters a and
// b (in either case), or 0.
func detIBANLength(a, b byte) int {
	return int(detIBANLengths[int((a|0x20)-'a')*26+int((b|0x20)-'a')])
}

func (ibanDetector) Detect(b []byte) bool {
	// Each position where two letters and two digits start a word costs
	// at most the 34 characters of an IBAN and its 8 spaces.
	for i := 0; i+detIBANMin <= len(b); i++ {
		if !detIsAlpha(b[i]) || !detIsAlpha(b[i+1]) || !detIsDigit(b[i+2]) || !detIsDigit(b[i+3]) {
			continue
		}
		if i > 0 && detIsAlnum(b[i-1]) {
			continue
		}
		if l := detIBANLength(b[i], b[i+1]); l > 0 && detIBANAt(b[i:], l) {
			return true
		}
	}
	return false
}

// detIBANAt reports whether s starts with an IBAN of length l (letters and
// digits, not counting the spaces of the printed form), with s[:4] the
// country code and check digits.
func detIBANAt(s []byte, l int) bool {
	check := detAtoi(s[2:4])
	if check < 2 || check > 98 {
		return false
	}
	grouped := len(s) > 4 && s[4] == ' '
	rem := 0
	j := 4
	for count := 4; count < l; count++ {
		if grouped && count%4 == 0 {
			if j >= len(s) || s[j] != ' ' {
				return false
			}
			j++
		}
		if j >= len(s) || !detIsAlnum(s[j]) {
			return false
		}
		rem = detMod97(rem, s[j])
		j++
	}
	if j < len(s) && detIsAlnum(s[j]) {
		return false
	}
	// The country code and the check digits go after the account.
	rem = detMod97(detMod97(rem, s[0]), s[1])
	rem = detMod97(detMod97(rem, s[2]), s[3])
	return rem == 1
}

// detMod97 appends the letter or digit c to the number whose remainder
// modulo 97 is rem (a letter is the two digits of 10 to 35, as ISO 13616
// writes it) and returns the new remainder.
func detMod97(rem int, c byte) int {
	if detIsDigit(c) {
		return (rem*10 + int(c-'0')) % 97
	}
	return (rem*100 + int((c|0x20)-'a') + 10) % 97
}

// USSSN returns a Detector, named "ssn", that finds a United States Social
// Security Number anywhere in a value: NNN-NN-NNNN with dashes, or
// NNN NN NNNN with single spaces (the same separator twice).
//
// It matches only numbers the SSA can issue: area 001 to 899 except 666,
// group 01 to 99, serial 0001 to 9999. The number stands on its own: no
// letter or digit touches it, and it does not continue a number (a digit
// and a dash, dot, slash or its separator before it, or the same after
// it: "1-123-45-6789" and "123-45-6789-0" are not SSNs).
//
// It deliberately does not match nine digits without separators
// ("123456789" is as likely an order number, a zip+4 or a phone
// extension), other separators (dots, slashes, mixed), nor the invalid
// areas 000, 666 and 900-999 (ITINs and advertising numbers), group 00 or
// serial 0000. It cannot tell a valid-looking number that was never issued
// (such as the well-known 078-05-1120) from a real one: it matches those.
func USSSN() Detector { return ssnDetector{} }

type ssnDetector struct{}

func (ssnDetector) Name() string { return detectorSSN }

func (ssnDetector) Detect(b []byte) bool {
	for i := 0; i+11 <= len(b); i++ {
		if !detIsDigit(b[i]) {
			continue
		}
		sep := b[i+3]
		if (sep != '-' && sep != ' ') || b[i+6] != sep ||
			!detDigits(b[i:i+3]) || !detDigits(b[i+4:i+6]) || !detDigits(b[i+7:i+11]) {
			continue
		}
		if !detNumberStart(b, i, sep) || !detNumberEnd(b, i+11, sep) {
			continue
		}
		area, group, serial := detAtoi(b[i:i+3]), detAtoi(b[i+4:i+6]), detAtoi(b[i+7:i+11])
		if area == 0 || area == 666 || area >= 900 || group == 0 || serial == 0 {
			continue
		}
		return true
	}
	return false
}

// Phone returns a Detector, named "phone", that finds a telephone number
// anywhere in a value, in one of two shapes.
//
// International (E.164): '+', then 8 to 15 digits, the first not 0, in
// groups separated by a single space, dash or dot, or by parentheses with
// at most one of those next to them ("+14155550100", "+44 20 7946 0958",
// "+44 (0)20 7946 0958", "+33 1.23.45.67.89", "(+1) 415-555-0100"). The
// '+' has no letter or digit before it (so "+05:30" and "1e+10" are not
// phones), and no letter or digit follows the last digit. A number whose
// only separator is one dot ("+12345678.90") is a signed decimal, not a
// phone. Digits past the 15th (a longer number) make no phone.
//
// North American (NANP): NXX-NXX-XXXX with dashes, dots or single spaces
// (the same twice), or (NXX) NXX-XXXX (the space after the parenthesis
// optional, then a dash, dot or space), optionally after a country code
// "1" and a separator ("1-415-555-0100", "1 (415) 555-0100"). N is 2 to 9,
// and the area code is not N11 (a service code). The number stands on its
// own: no letter or digit touches it, and it does not continue a number
// (see USSSN).
//
// It deliberately does not match: digits without phone formatting
// ("4155550100": a phone, an order id or an amount), seven-digit local
// numbers ("555-0100"), national formats outside North America without '+'
// ("020 7946 0958", "0044 20 7946 0958", "06 12 34 56 78"), dates
// ("2024-01-15"), times, IPv4 and IPv6 addresses, version numbers and
// other dotted numbers ("10.20.30.4000" has groups of 2), and numbers whose
// area code or exchange starts with 0 or 1.
func Phone() Detector { return phoneDetector{} }

type phoneDetector struct{}

func (phoneDetector) Name() string { return detectorPhone }

// detPhoneMaxDigits and detPhoneMinDigits bound an international number.
const (
	detPhoneMinDigits = 8
	detPhoneMaxDigits = 15
)

func (phoneDetector) Detect(b []byte) bool {
	// A number starts with '+', '(' or a digit, with no letter or digit
	// before it. Each start costs at most the few dozen bytes of one
	// number; the rest of a word or digit run is skipped.
	for i := 0; i < len(b); {
		c := b[i]
		switch {
		case c == '+':
			if (i == 0 || !detIsAlnum(b[i-1])) && detPhoneE164(b, i+1) {
				return true
			}
		case c == '(':
			if detPhoneNANP(b, i) {
				return true
			}
		case detIsAlnum(c):
			if detIsDigit(c) && detPhoneNANP(b, i) {
				return true
			}
			for i++; i < len(b) && detIsAlnum(b[i]); i++ {
			}
			continue
		}
		i++
	}
	return false
}

// detPhoneGapByte reports whether c may separate the digit groups of an
// international number.
func detPhoneGapByte(c byte) bool {
	return c == ' ' || c == '-' || c == '.' || c == '(' || c == ')'
}

// detPhoneE164 reports whether b[i:], after a '+', is an international
// number.
func detPhoneE164(b []byte, i int) bool {
	if i >= len(b) || b[i] < '1' || b[i] > '9' {
		return false
	}
	digits, gaps, dots := 0, 0, 0
	j := i
	for {
		for j < len(b) && detIsDigit(b[j]) {
			digits++
			j++
			if digits > detPhoneMaxDigits {
				return false
			}
		}
		// A gap is 1 or 2 bytes of " -.()", at most one of them not a
		// parenthesis, with a digit after it; anything else ends the
		// number.
		k, plain := j, 0
		for k < len(b) && k-j < 2 && detPhoneGapByte(b[k]) {
			if b[k] != '(' && b[k] != ')' {
				plain++
			}
			k++
		}
		if k == j || plain > 1 || k >= len(b) || !detIsDigit(b[k]) {
			break
		}
		gaps++
		if k-j == 1 && b[j] == '.' {
			dots++
		}
		j = k
	}
	if digits < detPhoneMinDigits {
		return false
	}
	if j < len(b) && detIsAlnum(b[j]) {
		return false
	}
	// "+12345678.90": one dot and nothing else is a decimal number.
	return !(gaps == 1 && dots == 1)
}

// detPhoneNANP reports whether a North American number starts at b[i].
func detPhoneNANP(b []byte, i int) bool {
	if b[i] == '1' && i+1 < len(b) {
		if s := b[i+1]; s == '-' || s == '.' || s == ' ' {
			if detPhoneNANPAt(b, i, i+2, s) {
				return true
			}
		}
	}
	return detPhoneNANPAt(b, i, i, 0)
}

// detPhoneNANPAt reports whether b[j:] is a North American number without
// its country code; the number starts at b[start], which is b[j] or a
// country code "1" and the separator lead before it.
func detPhoneNANPAt(b []byte, start, j int, lead byte) bool {
	var area, exchange, line []byte
	var sep byte
	var end int
	if j < len(b) && b[j] == '(' {
		if j+5 > len(b) || b[j+4] != ')' {
			return false
		}
		area = b[j+1 : j+4]
		k := j + 5
		if k < len(b) && b[k] == ' ' {
			k++
		}
		if k+8 > len(b) {
			return false
		}
		exchange, sep, line = b[k:k+3], b[k+3], b[k+4:k+8]
		if lead != 0 && lead != ' ' && lead != '-' {
			return false
		}
		end = k + 8
	} else {
		if j+12 > len(b) {
			return false
		}
		area, sep, exchange, line = b[j:j+3], b[j+3], b[j+4:j+7], b[j+8:j+12]
		if b[j+7] != sep || (lead != 0 && lead != sep) {
			return false
		}
		end = j + 12
	}
	if sep != '-' && sep != '.' && sep != ' ' {
		return false
	}
	if !detDigits(area) || !detDigits(exchange) || !detDigits(line) {
		return false
	}
	if area[0] < '2' || exchange[0] < '2' || (area[1] == '1' && area[2] == '1') {
		return false
	}
	boundary := sep
	if lead != 0 {
		boundary = lead
	}
	return detNumberStart(b, start, boundary) && detNumberEnd(b, end, sep)
}
