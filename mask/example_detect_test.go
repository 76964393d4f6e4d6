package mask_test

import (
	"fmt"

	"github.com/pgwarden/pgwarden/mask"
)

func ExamplePaymentCard() {
	card := mask.PaymentCard()
	for _, cell := range []string{
		"card: 4111 1111 1111 1111 exp 12/29",
		"card: 4111 1111 1111 1112 exp 12/29", // fails the Luhn check
		"order 100000000000001 shipped",       // no card prefix, 15 digits
		"ref 411111111111111100000000000000",  // a card inside a longer number
	} {
		fmt.Println(card.Detect([]byte(cell)))
	}
	// Output:
	// true
	// false
	// false
	// false
}

func ExampleIBAN() {
	iban := mask.IBAN()
	fmt.Println(iban.Detect([]byte("IBAN: GB82 WEST 1234 5698 7654 32, BIC NWBKGB2L")))
	fmt.Println(iban.Detect([]byte("DE89370400440532013000")))
	fmt.Println(iban.Detect([]byte("DE88370400440532013000")))   // wrong check digits
	fmt.Println(iban.Detect([]byte("DE89 3704 0044 0532 0130"))) // too short for DE
	// Output:
	// true
	// true
	// false
	// false
}

func ExampleEmailAddress() {
	email := mask.EmailAddress()
	fmt.Println(email.Detect([]byte("contact: Bob.Smith+tag@mail.example.co.uk, thanks")))
	fmt.Println(email.Detect([]byte("root@localhost")))
	fmt.Println(email.Detect([]byte("logo@2x.png")))
	// Output:
	// true
	// false
	// false
}

func ExampleAll() {
	cell := []byte("Alice <alice@example.com> paid with 4242 4242 4242 4242, call (415) 555-0100")
	for _, d := range mask.All() {
		if d.Detect(cell) {
			fmt.Println(d.Name())
		}
	}
	// Output:
	// email
	// card
	// phone
}

func ExampleDetectorByName() {
	// The detectors of a rule, from configuration.
	var ds []mask.Detector
	for _, name := range []string{"jwt", "api_key", "private_key"} {
		d, err := mask.DetectorByName(name)
		if err != nil {
			fmt.Println(err)
			return
		}
		ds = append(ds, d)
	}
	fmt.Println(mask.DetectAny(ds, []byte("aws_access_key_id = AKIAIOSFODNN7EXAMPLE")))
	fmt.Println(mask.DetectAny(ds, []byte("no secret here")))

	_, err := mask.DetectorByName("passport")
	fmt.Println(err)
	// Output:
	// true
	// false
	// mask: unknown detector "passport" (the detectors are email, card, iban, ssn, phone, jwt, api_key, private_key)
}

func ExampleDetectAny() {
	ds := []mask.Detector{mask.USSSN(), mask.Phone()}
	for _, cell := range []string{
		"SSN 536-22-1234",
		"call +44 20 7946 0958",
		"released 2024-01-15, version 10.11.12",
	} {
		fmt.Println(mask.DetectAny(ds, []byte(cell)))
	}
	// Output:
	// true
	// true
	// false
}
