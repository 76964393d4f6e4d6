package mask_test

import (
	"fmt"

	"github.com/pgwarden/pgwarden/mask"
)

// The pg_type OIDs of the examples.
const (
	exTypText    = 25
	exTypVarchar = 1043
	exTypInt4    = 23
	exTypInt8    = 20
	exTypNumeric = 1700
	exTypJSONB   = 3802
)

// showMasked masks value, a cell of type typ in format f, and prints the result.
func showMasked(m mask.Masker, typ uint32, f mask.Format, value []byte) {
	out, null, err := m.Mask(nil, mask.Cell{Type: typ, Format: f, Value: value})
	switch {
	case err != nil:
		fmt.Println("error:", err)
	case null:
		fmt.Println("NULL")
	case f == mask.Binary && !mask.TextLike(typ):
		fmt.Printf("% x\n", out)
	default:
		fmt.Println(string(out))
	}
}

func ExampleRedact() {
	m := mask.Redact()
	showMasked(m, exTypText, mask.Text, []byte("hunter2"))
	showMasked(m, exTypText, mask.Text, []byte("a much longer secret"))
	showMasked(m, exTypInt4, mask.Text, []byte("42"))
	// Output:
	// ***
	// ***
	// NULL
}

func ExamplePartial() {
	m := mask.Partial(0, 4)
	showMasked(m, exTypVarchar, mask.Text, []byte("4111 1111 1111 1111"))
	showMasked(m, exTypVarchar, mask.Binary, []byte("4111 1111 1111 1111"))
	showMasked(m, exTypVarchar, mask.Text, []byte("1234")) // too short to keep anything
	showMasked(mask.Partial(1, 1), exTypText, mask.Text, []byte("Łukasz"))
	// Output:
	// ***1111
	// ***1111
	// ***
	// Ł***z
}

func ExampleEmail() {
	showMasked(mask.Email(true), exTypText, mask.Text, []byte("alice@example.com"))
	showMasked(mask.Email(false), exTypText, mask.Text, []byte("alice@example.com"))
	showMasked(mask.Email(true), exTypText, mask.Text, []byte("not an address"))
	// Output:
	// ***@example.com
	// ***@***
	// ***
}

func ExampleKeyedHash() {
	m, err := mask.KeyedHash([]byte("an example key, 32 bytes long..."))
	if err != nil {
		panic(err)
	}
	showMasked(m, exTypText, mask.Text, []byte("alice@example.com"))
	showMasked(m, exTypText, mask.Text, []byte("alice@example.com")) // the same value, the same output
	showMasked(m, exTypInt8, mask.Text, []byte("1001"))
	showMasked(m, exTypInt8, mask.Binary, []byte{0, 0, 0, 0, 0, 0, 0x03, 0xe9}) // 1001, in binary
	showMasked(m, exTypJSONB, mask.Text, []byte(`{"a": 1}`))
	// Output:
	// 34ee21ca867b59c624cec3eb066d5aa9
	// 34ee21ca867b59c624cec3eb066d5aa9
	// 2987787701565648476
	// 29 76 c1 15 a8 19 ee 5c
	// NULL
}

func ExampleDigits() {
	m, err := mask.Digits([]byte("an example key, 32 bytes long..."))
	if err != nil {
		panic(err)
	}
	showMasked(m, exTypText, mask.Text, []byte("4111-1111-1111-1111"))
	showMasked(m, exTypText, mask.Text, []byte("+1 (555) 010-4477"))
	showMasked(m, exTypInt4, mask.Text, []byte("-2147483648"))
	showMasked(m, exTypNumeric, mask.Text, []byte("1234.50"))
	// Output:
	// 4901-2398-7185-6783
	// +9 (136) 639-8873
	// -1244536576
	// 9160.85
}

func ExampleNull() {
	showMasked(mask.Null(), exTypText, mask.Text, []byte("anything"))
	// Output:
	// NULL
}

func ExampleMaskerSpec() {
	// As a YAML configuration gives it: {method: partial, keep_last: 4}.
	spec := mask.MaskerSpec{Method: "partial", KeepLast: 4}
	m, err := spec.Masker(nil)
	if err != nil {
		panic(err)
	}
	fmt.Println(spec)
	showMasked(m, exTypText, mask.Text, []byte("4111111111111111"))

	_, err = mask.MaskerSpec{Method: "partial"}.Masker(nil)
	fmt.Println(err)
	// Output:
	// partial(0,4)
	// ***1111
	// mask: masker partial: keeps nothing: set keep_first or keep_last (or use redact)
}

func ExampleByName() {
	key := []byte("an example key, 32 bytes long...")
	for _, name := range []string{"email(keep_domain)", "partial(2,2)", "sha256"} {
		m, err := mask.ByName(name, key)
		if err != nil {
			fmt.Println(err)
			continue
		}
		showMasked(m, exTypText, mask.Text, []byte("bob@example.org"))
	}
	// Output:
	// ***@example.org
	// bo***rg
	// mask: masker: unknown method "sha256" (want redact, partial, email, hash, null or digits)
}
