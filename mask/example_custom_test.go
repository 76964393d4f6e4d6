package mask_test

import (
	"fmt"
	"time"

	"github.com/pgwarden/pgwarden/mask"
)

// MaskerFunc adapts a function to a Masker: here, one that keeps only
// the year of a date (birth dates that still make an age pyramid). It
// keeps the contract: it appends to dst and returns the extended slice,
// gives a value the client can decode (a date, in the cell's format) or
// NULL, keeps no more of the input than the year, and keeps neither
// slice.
func ExampleMaskerFunc() {
	const typDate = 1082 // pg_type OID of date
	yearOnly := mask.MaskerFunc(func(dst []byte, c mask.Cell) ([]byte, bool, error) {
		if c.Type != typDate || c.Format != mask.Text {
			return dst, true, nil // a type or format it does not handle: NULL, never the input
		}
		t, err := time.Parse(time.DateOnly, string(c.Value)) // DateStyle ISO
		if err != nil {
			return dst, true, nil // infinity, another DateStyle: NULL
		}
		return fmt.Appendf(dst, "%04d-01-01", t.Year()), false, nil
	})
	showMasked(yearOnly, typDate, mask.Text, []byte("1984-03-12"))
	showMasked(yearOnly, typDate, mask.Text, []byte("infinity"))
	showMasked(yearOnly, typDate, mask.Binary, []byte{0xff, 0xff, 0xe0, 0x31})
	showMasked(yearOnly, exTypText, mask.Text, []byte("1984-03-12"))

	rules := mask.Rules{{Column: "public.people.birth_date", Masker: yearOnly}}
	fmt.Println(rules.Validate())
	// Output:
	// 1984-01-01
	// NULL
	// NULL
	// NULL
	// <nil>
}

// Rules name the masked columns (or tables, or every result with
// detectors), their maskers and who is exempt; Proxy.Masks takes them,
// and the proxy refuses to serve invalid ones.
func ExampleRules() {
	rules := mask.Rules{
		{Column: "public.users.email", Masker: mask.Email(true), UnlessGroups: []string{"support"}},
		{Table: "public.cards", Masker: mask.Partial(0, 4)},
		{Table: "*", Masker: mask.Redact(), Detectors: []mask.Detector{mask.PaymentCard(), mask.PrivateKey()}},
	}
	fmt.Println(rules.Validate())
	fmt.Println(rules[0].RuleName(), "exempts support:", rules[0].Exempt([]string{"support"}))

	bad := mask.Rules{
		{Column: "users.email", Masker: mask.Redact()},
		{Table: "*", Masker: mask.Redact()},
		{Column: "public.users.ssn"},
	}
	fmt.Println(bad.Validate())
	// Output:
	// <nil>
	// mask public.users.email exempts support: true
	// mask rule 1: "users.email" is not schema.table.column or schema.table
	// mask rule 2 (mask every result): a rule for every result needs detectors
	// mask rule 3 (mask public.users.ssn): no masker
}

// ParseMaskerSpec reads a masker's name as configuration writes it.
func ExampleParseMaskerSpec() {
	for _, text := range []string{"partial(0,4)", "email(keep_domain)", "hash", "partial(0,0)"} {
		spec, err := mask.ParseMaskerSpec(text)
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Println(spec.Method, spec.KeepFirst, spec.KeepLast, spec.KeepDomain)
	}
	// Output:
	// partial 0 4 false
	// email 0 0 true
	// hash 0 0 false
	// mask: masker partial: keeps nothing: set keep_first or keep_last (or use redact)
}
