package wire

import (
	"bytes"
	"testing"
)

// BenchmarkReaderNext frames DataRow-sized messages from a stream, the
// gateway's per-row cost of reading.
func BenchmarkReaderNext(b *testing.B) {
	row := frame('D', dataRow(8, 20, -1, 4))
	stream := bytes.Repeat(row, 1000)
	src := bytes.NewReader(stream)
	r := NewReader(src, 0)
	b.SetBytes(int64(len(row)))
	for b.Loop() {
		if _, err := r.Next(); err != nil {
			src.Reset(stream)
			r = NewReader(src, 0)
		}
	}
}

// BenchmarkValidateDataRow is the check every forwarded row goes through.
func BenchmarkValidateDataRow(b *testing.B) {
	body := dataRow(8, 20, -1, 4, 100, 0, 16)
	for b.Loop() {
		if err := ValidateDataRow(body); err != nil {
			b.Fatal(err)
		}
	}
}
