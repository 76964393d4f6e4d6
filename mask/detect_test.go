package mask_test

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pgwarden/pgwarden/mask"
)

// detectNames are the names of the built-in detectors, in All's order.
var detectNames = []string{"email", "card", "iban", "ssn", "phone", "jwt", "api_key", "private_key"}

// detectCase is one line of a corpus file.
type detectCase struct {
	where string // file:line
	value []byte
}

// detectCorpus reads testdata/detect/NAME.KIND.txt (KIND is positive or
// negative): one value a line; blank lines and lines starting with '#'
// are skipped, a line starting with "go:" holds a Go string literal.
func detectCorpus(tb testing.TB, name, kind string) []detectCase {
	tb.Helper()
	path := filepath.Join("testdata", "detect", name+"."+kind+".txt")
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	var cases []detectCase
	s := bufio.NewScanner(f)
	for line := 1; s.Scan(); line++ {
		text := s.Text()
		if strings.TrimSpace(text) == "" || strings.HasPrefix(text, "#") {
			continue
		}
		where := fmt.Sprintf("%s:%d", path, line)
		if lit, ok := strings.CutPrefix(text, "go:"); ok {
			u, err := strconv.Unquote(lit)
			if err != nil {
				tb.Fatalf("%s: %v", where, err)
			}
			text = u
		}
		cases = append(cases, detectCase{where: where, value: []byte(text)})
	}
	if err := s.Err(); err != nil {
		tb.Fatal(err)
	}
	if len(cases) == 0 {
		tb.Fatalf("%s: no cases", path)
	}
	return cases
}

// detectAllCases is every corpus value, positive and negative, of every
// detector.
func detectAllCases(tb testing.TB) []detectCase {
	var all []detectCase
	for _, name := range detectNames {
		all = append(all, detectCorpus(tb, name, "positive")...)
		all = append(all, detectCorpus(tb, name, "negative")...)
	}
	return all
}

func TestDetectCorpora(t *testing.T) {
	for _, d := range mask.All() {
		t.Run(d.Name(), func(t *testing.T) {
			for _, c := range detectCorpus(t, d.Name(), "positive") {
				if !d.Detect(c.value) {
					t.Errorf("%s: %s does not match %q; it should", c.where, d.Name(), c.value)
				}
			}
			for _, c := range detectCorpus(t, d.Name(), "negative") {
				if d.Detect(c.value) {
					t.Errorf("%s: %s matches %q; it should not", c.where, d.Name(), c.value)
				}
			}
		})
	}
}

// TestDetectCorporaJoined checks that a line feed is never part of a match:
// the negatives joined by line feeds do not match, and each positive
// among them still does.
func TestDetectCorporaJoined(t *testing.T) {
	for _, d := range mask.All() {
		t.Run(d.Name(), func(t *testing.T) {
			var negatives [][]byte
			for _, c := range detectCorpus(t, d.Name(), "negative") {
				negatives = append(negatives, c.value)
			}
			joined := bytes.Join(negatives, []byte("\n"))
			if d.Detect(joined) {
				t.Fatalf("%s matches its negatives joined by line feeds", d.Name())
			}
			for _, c := range detectCorpus(t, d.Name(), "positive") {
				v := bytes.Join([][]byte{joined, c.value, joined}, []byte("\n"))
				if !d.Detect(v) {
					t.Errorf("%s: %s does not match %q among its negatives", c.where, d.Name(), c.value)
				}
			}
		})
	}
}

// TestDetectSingleDigitErrors changes each digit of the compact card
// numbers and IBANs of the corpora to every other digit: the Luhn check
// and the mod-97 check catch every such change.
func TestDetectSingleDigitErrors(t *testing.T) {
	for _, name := range []string{"card", "iban"} {
		d, err := mask.DetectorByName(name)
		if err != nil {
			t.Fatal(err)
		}
		checked := 0
		for _, c := range detectCorpus(t, name, "positive") {
			compact := len(c.value) > 0
			for _, b := range c.value {
				compact = compact && (b >= '0' && b <= '9' || b >= 'A' && b <= 'Z')
			}
			if !compact {
				continue
			}
			checked++
			v := bytes.Clone(c.value)
			for i, orig := range c.value {
				if orig < '0' || orig > '9' {
					continue
				}
				for digit := byte('0'); digit <= '9'; digit++ {
					if digit == orig {
						continue
					}
					v[i] = digit
					if d.Detect(v) {
						t.Errorf("%s: %s matches %q (digit %d changed)", c.where, name, v, i+1)
					}
				}
				v[i] = orig
			}
		}
		if checked < 4 {
			t.Errorf("%s: only %d compact positives", name, checked)
		}
	}
}

// detectLuhn is the Luhn check, written again.
func detectLuhn(digits string) bool {
	sum := 0
	for i := range len(digits) {
		v := int(digits[len(digits)-1-i] - '0')
		if i%2 == 1 {
			v *= 2
			if v > 9 {
				v -= 9
			}
		}
		sum += v
	}
	return sum%10 == 0
}

// detectRefCard is the documented rule of PaymentCard for a value of
// digits only, written again from the table of its documentation.
func detectRefCard(digits string) bool {
	n := len(digits)
	if n < 13 || n > 19 || !detectLuhn(digits) {
		return false
	}
	prefix := func(k int) int {
		v, _ := strconv.Atoi(digits[:k])
		return v
	}
	in := func(k, lo, hi int) bool { p := prefix(k); return lo <= p && p <= hi }
	lengths := func(ls ...int) bool {
		for _, l := range ls {
			if n == l {
				return true
			}
		}
		return false
	}
	switch {
	case in(1, 4, 4):
		return lengths(13, 16, 19)
	case in(2, 51, 55), in(4, 2221, 2720):
		return n == 16
	case in(2, 34, 34), in(2, 37, 37):
		return n == 15
	case in(4, 6011, 6011), in(3, 644, 649), in(2, 65, 65):
		return n >= 16
	case in(4, 3528, 3589):
		return n >= 16
	case in(3, 300, 305), in(2, 36, 36), in(2, 38, 39):
		return n >= 14
	case in(2, 62, 62):
		return n >= 16
	}
	return false
}

// TestPaymentCardPrefixes compares PaymentCard with detectRefCard on
// Luhn-valid and invalid numbers of every length from 12 to 20, around
// every bound of the issuer ranges.
func TestPaymentCardPrefixes(t *testing.T) {
	prefixes := []string{
		"0", "1", "2", "3", "4", "5", "6", "7", "8", "9",
		"2220", "2221", "2720", "2721", "299", "300", "305", "306", "3095",
		"33", "34", "35", "3527", "3528", "3589", "3590", "36", "37", "38", "39",
		"40", "49", "50", "51", "55", "56", "6010", "6011", "6012", "643", "644",
		"649", "650", "659", "61", "62", "63", "64", "66",
	}
	card := mask.PaymentCard()
	matches := 0
	for _, p := range prefixes {
		for n := 12; n <= 20; n++ {
			body := p + strings.Repeat("7", n-len(p)-1)
			for last := '0'; last <= '9'; last++ {
				v := body + string(last)
				got, want := card.Detect([]byte(v)), detectRefCard(v)
				if got != want {
					t.Errorf("PaymentCard().Detect(%q) = %v, want %v", v, got, want)
				}
				if got {
					matches++
				}
			}
		}
	}
	if matches < 50 {
		t.Errorf("only %d matches: the test does not test much", matches)
	}
}

func TestDetectAllocs(t *testing.T) {
	cases := detectAllCases(t)
	for _, d := range mask.All() {
		allocs := testing.AllocsPerRun(20, func() {
			for _, c := range cases {
				d.Detect(c.value)
			}
		})
		if allocs != 0 {
			t.Errorf("%s allocates %v times per corpus pass", d.Name(), allocs)
		}
	}
	all := mask.All()
	allocs := testing.AllocsPerRun(20, func() {
		for _, c := range cases {
			mask.DetectAny(all, c.value)
		}
	})
	if allocs != 0 {
		t.Errorf("DetectAny allocates %v times per corpus pass", allocs)
	}
}

// detectAdversarial are the units that TestDetectLinear repeats into 1 MB
// inputs: each is the start of something a detector looks for, so a
// scanner that restarted its work at each of them would be quadratic.
var detectAdversarial = []string{
	"0", "1 ", "1-", "1234 ", "4111 ", "4111-", "4111111111111111", "4111 1111 1111 1111 ",
	"@", "a@", "a@b.", "a.", "a@b.c@", "x-", "\xff@\xff.",
	"DE89", "DE89 ", "DE89 3704 ", "GB82WEST",
	"123-45-", "123 45 ", "+", "+1 ", "+1(", "(415) ", "415-555-", "1-",
	"eyJ", "eyJ.", "eyJhbGciOiJIUzI1NiJ9.", "eyJhbGciOiJIUzI1NiJ9.eyJ9.", "e30.",
	"AKIA", "ghp_", "sk-", "sk-A1b", "xoxb-", "SG.", "AIza", "pypi-AgEIcHlwaS5vcmc",
	"-", "-----", "-----BEGIN ", "-----BEGIN A", "-----END ",
	"\x00", "\xff", "\n",
}

// TestDetectLinear runs every detector on 1 MB inputs made of one unit
// repeated. It asserts nothing on time (go test -v shows it, the fuzz and
// the benchmarks show the costs): a quadratic scanner would take minutes.
// With -short or -race (which makes each byte read some 20 times slower,
// and has nothing to check here) the inputs are of 64 KB.
func TestDetectLinear(t *testing.T) {
	size := 1 << 20
	if testing.Short() || detectRaceEnabled() {
		size = 64 << 10
	}
	ds := mask.All()
	for _, unit := range detectAdversarial {
		in := bytes.Repeat([]byte(unit), size/len(unit))
		start := time.Now()
		for _, d := range ds {
			first := d.Detect(in)
			if d.Detect(in) != first {
				t.Errorf("%s: two answers on %q repeated", d.Name(), unit)
			}
		}
		t.Logf("%-28q %d bytes, every detector twice: %v", unit, len(in), time.Since(start))
	}
}

// detectRaceEnabled reports whether the test binary was built with -race.
func detectRaceEnabled() bool {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range info.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}

func TestDetectorByName(t *testing.T) {
	all := mask.All()
	if len(all) != len(detectNames) {
		t.Fatalf("All() has %d detectors, want %d", len(all), len(detectNames))
	}
	for i, name := range detectNames {
		if got := all[i].Name(); got != name {
			t.Errorf("All()[%d].Name() = %q, want %q", i, got, name)
		}
		d, err := mask.DetectorByName(name)
		if err != nil {
			t.Errorf("DetectorByName(%q): %v", name, err)
			continue
		}
		if d.Name() != name {
			t.Errorf("DetectorByName(%q).Name() = %q", name, d.Name())
		}
	}
	for _, name := range []string{"", "Email", "EMAIL", " email", "credit_card", "api-key", "privatekey"} {
		d, err := mask.DetectorByName(name)
		if err == nil {
			t.Errorf("DetectorByName(%q) = %v, want an error", name, d)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, strconv.Quote(name)) || !strings.Contains(msg, strings.Join(detectNames, ", ")) {
			t.Errorf("DetectorByName(%q): the error %q does not name the detector and the known ones", name, msg)
		}
	}
	// All returns a new slice each time.
	all[0] = nil
	if mask.All()[0] == nil {
		t.Error("All() returns a shared slice")
	}
}

func TestDetectAny(t *testing.T) {
	email, card := mask.EmailAddress(), mask.PaymentCard()
	both := []byte("alice@example.com 4111 1111 1111 1111")
	for _, tc := range []struct {
		ds   []mask.Detector
		in   string
		want bool
	}{
		{nil, "alice@example.com", false},
		{[]mask.Detector{}, "alice@example.com", false},
		{[]mask.Detector{nil}, "alice@example.com", false},
		{[]mask.Detector{nil, email}, "alice@example.com", true},
		{[]mask.Detector{card}, "alice@example.com", false},
		{[]mask.Detector{card, email}, "alice@example.com", true},
		{[]mask.Detector{card, email}, "nothing here", false},
		{mask.All(), string(both), true},
		{mask.All(), "", false},
	} {
		if got := mask.DetectAny(tc.ds, []byte(tc.in)); got != tc.want {
			t.Errorf("DetectAny(%d detectors, %q) = %v, want %v", len(tc.ds), tc.in, got, tc.want)
		}
	}
}

// TestDetectConcurrent runs the detectors from several goroutines at once
// (for the race detector).
func TestDetectConcurrent(t *testing.T) {
	cases := detectAllCases(t)
	ds := mask.All()
	want := make([][]bool, len(ds))
	for i, d := range ds {
		for _, c := range cases {
			want[i] = append(want[i], d.Detect(c.value))
		}
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for i, d := range ds {
				for j, c := range cases {
					if d.Detect(c.value) != want[i][j] {
						t.Errorf("%s: %s gives another answer concurrently", c.where, d.Name())
					}
				}
			}
		})
	}
	wg.Wait()
}

// TestDetectEmpty checks the smallest inputs: nil, empty, one byte of each
// value.
func TestDetectEmpty(t *testing.T) {
	for _, d := range mask.All() {
		if d.Detect(nil) || d.Detect([]byte{}) {
			t.Errorf("%s matches an empty value", d.Name())
		}
		for c := range 256 {
			if d.Detect([]byte{byte(c)}) {
				t.Errorf("%s matches the byte %#x", d.Name(), c)
			}
		}
	}
}
