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

func ExampleUSSSN() {
	ssn := mask.USSSN()
	for _, cell := range []string{
		"SSN 536-22-1234",
		"SSN 536 22 1234",
		"ITIN 912-70-1234",  // area 900-999: not an SSN
		"order 536221234",   // no separators
		"tel 1-536-22-1234", // continues a number
	} {
		fmt.Println(ssn.Detect([]byte(cell)))
	}
	// Output:
	// true
	// true
	// false
	// false
	// false
}

func ExamplePhone() {
	phone := mask.Phone()
	for _, cell := range []string{
		"call +44 20 7946 0958",
		"office: (415) 555-0100",
		"4155550100",    // digits alone: a phone, an id or an amount
		"on 2024-01-15", // a date
		"timezone +05:30",
	} {
		fmt.Println(phone.Detect([]byte(cell)))
	}
	// Output:
	// true
	// true
	// false
	// false
	// false
}

func ExampleJWT() {
	jwt := mask.JWT()
	fmt.Println(jwt.Detect([]byte("Authorization: Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl")))
	fmt.Println(jwt.Detect([]byte("eyJmb28iOiJiYXIifQ"))) // base64 of JSON, but no token
	// Output:
	// true
	// false
}

func ExampleAPIKey() {
	keys := mask.APIKey()
	fmt.Println(keys.Detect([]byte("aws_access_key_id = AKIAIOSFODNN7EXAMPLE")))
	fmt.Println(keys.Detect([]byte("token: ghp_0123456789abcdefghijklmnopqrstuvwxyzAB")))
	fmt.Println(keys.Detect([]byte("stripe: pk_live_0123456789abcdefghijklmn"))) // publishable: not a secret
	// Output:
	// true
	// true
	// false
}

func ExamplePrivateKey() {
	key := mask.PrivateKey()
	fmt.Println(key.Detect([]byte("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA...")))
	fmt.Println(key.Detect([]byte("-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE...")))
	// Output:
	// true
	// false
}
