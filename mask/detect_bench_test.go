package mask_test

import (
	"strings"
	"testing"

	"github.com/pgwarden/pgwarden/mask"
)

// detectBenchMiss is a typical text cell of about 100 bytes in which no
// detector finds anything (but digits, dashes, dots and '+' that make
// them look).
const detectBenchMiss = "Order 84213 shipped 2024-01-15 10:42 via UPS; refund of $42.50 (+3 items) approved, v1.2.3 ok."

// detectBenchHit is, for each detector, a text cell of about 100 bytes
// with one match near its end.
var detectBenchHit = map[string]string{
	"email":       "Order 84213 shipped 2024-01-15 10:42 via UPS; refund approved, contact alice.smith@example.com ok.",
	"card":        "Order 84213 shipped 2024-01-15 10:42 via UPS; refund of $42.50 to card 4111 1111 1111 1111, ok.",
	"iban":        "Order 84213 shipped 2024-01-15 10:42 via UPS; refund $42.50 to IBAN DE89 3704 0044 0532 0130 00.",
	"ssn":         "Order 84213 shipped 2024-01-15 10:42 via UPS; refund of $42.50 (+3 items) approved, SSN 536-22-1234",
	"phone":       "Order 84213 shipped 2024-01-15 10:42 via UPS; refund of $42.50 (+3 items), call (415) 555-0100 ok.",
	"jwt":         "session 84213 2024-01-15: eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.SflKxwRJSMeKKF2QT4fwpMeJf36POk6",
	"api_key":     "Order 84213 shipped 2024-01-15 10:42 via UPS; refund of $42.50 (+3 items) key AKIAIOSFODNN7EXAMPLE",
	"private_key": "Order 84213 shipped 2024-01-15 10:42 via UPS; refund $42.50 ok; -----BEGIN OPENSSH PRIVATE KEY-----",
}

func BenchmarkDetect(b *testing.B) {
	for _, d := range mask.All() {
		for _, tc := range []struct {
			name, cell string
			want       bool
		}{
			{"miss", detectBenchMiss, false},
			{"hit", detectBenchHit[d.Name()], true},
		} {
			b.Run(d.Name()+"/"+tc.name, func(b *testing.B) {
				cell := []byte(tc.cell)
				if d.Detect(cell) != tc.want {
					b.Fatalf("%s.Detect(%q) != %v", d.Name(), cell, tc.want)
				}
				b.SetBytes(int64(len(cell)))
				b.ReportAllocs()
				for b.Loop() {
					d.Detect(cell)
				}
			})
		}
	}
}

// BenchmarkDetectAll runs every built-in detector over a 1 KB cell: with
// no match (every detector reads the whole cell), and with an API key at
// its end (the detectors before it read the whole cell).
func BenchmarkDetectAll(b *testing.B) {
	miss := strings.Repeat(detectBenchMiss+" ", 1024/(len(detectBenchMiss)+1)+1)[:1024]
	hit := miss[:1024-len("AKIAIOSFODNN7EXAMPLE")-1] + " AKIAIOSFODNN7EXAMPLE"
	all := mask.All()
	for _, tc := range []struct {
		name, cell string
		want       bool
	}{
		{"1KB/miss", miss, false},
		{"1KB/hit", hit, true},
	} {
		b.Run(tc.name, func(b *testing.B) {
			cell := []byte(tc.cell)
			if mask.DetectAny(all, cell) != tc.want {
				b.Fatalf("DetectAny(All(), %q) != %v", cell, tc.want)
			}
			b.SetBytes(int64(len(cell)))
			b.ReportAllocs()
			for b.Loop() {
				mask.DetectAny(all, cell)
			}
		})
	}
}
