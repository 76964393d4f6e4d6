package mask_test

import (
	"testing"

	"github.com/pgwarden/pgwarden/mask"
)

// benchMasker masks c with m again and again into a dst with room, as the
// proxy does with its row buffer: no allocation is expected.
func benchMasker(b *testing.B, m mask.Masker, c mask.Cell) {
	dst := make([]byte, 0, 256)
	if _, _, err := m.Mask(dst, c); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(c.Value)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := m.Mask(dst[:0], c); err != nil {
			b.Fatal(err)
		}
	}
}

var (
	benchEmail = mask.Cell{Type: typText, Format: mask.Text, Value: []byte("first.last+tag@mail.example.co.uk")}
	benchCard  = mask.Cell{Type: typVarchar, Format: mask.Text, Value: []byte("4111-1111-1111-1111")}
	benchName  = mask.Cell{Type: typText, Format: mask.Binary, Value: []byte("Zoë Łukasz-Żółć 日本")}
	benchInt8  = mask.Cell{Type: typInt8, Format: mask.Binary, Value: []byte{0, 0, 0, 0, 0x49, 0x96, 0x02, 0xd2}}
	benchInt4  = mask.Cell{Type: typInt4, Format: mask.Text, Value: []byte("-1234567890")}
	benchNum   = mask.Cell{Type: typNumeric, Format: mask.Text, Value: []byte("-12345.6789")}
	benchJSON  = mask.Cell{Type: typJSONB, Format: mask.Binary, Value: []byte("\x01{\"a\": 1}")}
)

func BenchmarkMaskRedact(b *testing.B) {
	b.Run("text", func(b *testing.B) { benchMasker(b, mask.Redact(), benchEmail) })
	b.Run("jsonb", func(b *testing.B) { benchMasker(b, mask.Redact(), benchJSON) })
}

func BenchmarkMaskNull(b *testing.B) {
	benchMasker(b, mask.Null(), benchEmail)
}

func BenchmarkMaskPartial(b *testing.B) {
	b.Run("card", func(b *testing.B) { benchMasker(b, mask.Partial(0, 4), benchCard) })
	b.Run("runes", func(b *testing.B) { benchMasker(b, mask.Partial(2, 2), benchName) })
}

func BenchmarkMaskEmail(b *testing.B) {
	b.Run("keep_domain", func(b *testing.B) { benchMasker(b, mask.Email(true), benchEmail) })
	b.Run("hide", func(b *testing.B) { benchMasker(b, mask.Email(false), benchEmail) })
}

func BenchmarkMaskKeyedHash(b *testing.B) {
	m := mustMasker(b)(mask.KeyedHash(maskKey))
	b.Run("text", func(b *testing.B) { benchMasker(b, m, benchEmail) })
	b.Run("int8-binary", func(b *testing.B) { benchMasker(b, m, benchInt8) })
	b.Run("int4-text", func(b *testing.B) { benchMasker(b, m, benchInt4) })
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			dst := make([]byte, 0, 64)
			for pb.Next() {
				if _, _, err := m.Mask(dst[:0], benchEmail); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

func BenchmarkMaskDigits(b *testing.B) {
	m := mustMasker(b)(mask.Digits(maskKey))
	b.Run("card", func(b *testing.B) { benchMasker(b, m, benchCard) })
	b.Run("int8-binary", func(b *testing.B) { benchMasker(b, m, benchInt8) })
	b.Run("int4-text", func(b *testing.B) { benchMasker(b, m, benchInt4) })
	b.Run("numeric", func(b *testing.B) { benchMasker(b, m, benchNum) })
}
