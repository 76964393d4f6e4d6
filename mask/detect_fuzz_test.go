package mask_test

import (
	"bytes"
	"testing"

	"github.com/pgwarden/pgwarden/mask"
)

// FuzzDetectors feeds every built-in detector arbitrary bytes a, with
// arbitrary bytes c to put around them. Each detector must:
//   - not panic, and not change its input;
//   - give the same answer twice;
//   - when it matches a, match it among spaces (" a ") and among other
//     lines ("c\na\nc"): nothing around a value hides what is in it, as
//     no match includes or depends on a space or line feed next to it;
//   - agree with DetectAny.
//
// And PaymentCard, on the digits of a alone (13 to 19 of them), must agree
// with its documented table (detectRefCard); IBAN must ignore ASCII case,
// and find a compact IBAN in its printed form too.
func FuzzDetectors(f *testing.F) {
	for _, c := range detectAllCases(f) {
		f.Add(c.value, []byte("x"))
	}
	f.Add([]byte(""), []byte(""))
	ds := mask.All()
	card, iban := mask.PaymentCard(), mask.IBAN()
	f.Fuzz(func(t *testing.T, a, c []byte) {
		orig := bytes.Clone(a)
		spaced := bytes.Join([][]byte{nil, a, nil}, []byte(" "))
		lines := bytes.Join([][]byte{c, a, c}, []byte("\n"))
		found := false
		for _, d := range ds {
			got := d.Detect(a)
			if !bytes.Equal(a, orig) {
				t.Fatalf("%s changed its input %q to %q", d.Name(), orig, a)
			}
			if d.Detect(a) != got {
				t.Fatalf("%s gives two answers on %q", d.Name(), a)
			}
			if !got {
				continue
			}
			found = true
			if !d.Detect(spaced) {
				t.Errorf("%s matches %q but not %q", d.Name(), a, spaced)
			}
			if !d.Detect(lines) {
				t.Errorf("%s matches %q but not %q", d.Name(), a, lines)
			}
		}
		if any := mask.DetectAny(ds, a); any != found {
			t.Errorf("DetectAny(All(), %q) = %v, but the detectors one by one: %v", a, any, found)
		}

		var digits []byte
		for _, b := range a {
			if b >= '0' && b <= '9' {
				digits = append(digits, b)
			}
		}
		if len(digits) >= 13 && len(digits) <= 19 {
			if got, want := card.Detect(digits), detectRefCard(string(digits)); got != want {
				t.Errorf("PaymentCard().Detect(%q) = %v, want %v", digits, got, want)
			}
		}

		upper := bytes.Clone(a)
		for i, b := range upper {
			if b >= 'a' && b <= 'z' {
				upper[i] = b - 'a' + 'A'
			}
		}
		if iban.Detect(a) != iban.Detect(upper) {
			t.Errorf("IBAN() matches %q and %q differently", a, upper)
		}
		alnum := len(a) > 0
		for _, b := range upper {
			alnum = alnum && (b >= '0' && b <= '9' || b >= 'A' && b <= 'Z')
		}
		if alnum && iban.Detect(a) {
			var printed []byte
			for i, b := range a {
				if i > 0 && i%4 == 0 {
					printed = append(printed, ' ')
				}
				printed = append(printed, b)
			}
			if !iban.Detect(printed) {
				t.Errorf("IBAN() matches %q but not %q", a, printed)
			}
		}
	})
}
