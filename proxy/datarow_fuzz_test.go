package proxy

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/pgwarden/pgwarden/internal/lineage"
	"github.com/pgwarden/pgwarden/internal/wire"
	"github.com/pgwarden/pgwarden/mask"
)

// fuzzMarker is what the fuzz masker writes: a cell equal to it in the
// output of a masked column is the masker's, never the server's.
const fuzzMarker = "\x00masked\x00"

// fuzzCells builds masks for n columns from a selector: per column, no
// mask, a masker, a NULL masker, or a masker behind a detector that fires
// on "@".
func fuzzCells(n int, sel []byte) []*cellMask {
	cells := make([]*cellMask, n)
	marker := mask.MaskerFunc(func(dst []byte, c mask.Cell) ([]byte, bool, error) {
		return append(dst, fuzzMarker...), false, nil
	})
	null := mask.MaskerFunc(func(dst []byte, c mask.Cell) ([]byte, bool, error) { return dst, true, nil })
	for i := range cells {
		var b byte
		if len(sel) > 0 {
			b = sel[i%len(sel)]
		}
		switch b % 4 {
		case 1:
			cells[i] = &cellMask{masker: marker, typ: 25}
		case 2:
			cells[i] = &cellMask{masker: null, typ: 23, format: mask.Binary}
		case 3:
			cells[i] = &cellMask{masker: marker, typ: 25, detectors: []mask.Detector{atDetector{}}}
		}
	}
	return cells
}

type atDetector struct{}

func (atDetector) Name() string         { return "at" }
func (atDetector) Detect(b []byte) bool { return bytes.IndexByte(b, '@') >= 0 }

// cellsOf splits a valid DataRow body into its cells (nil for NULL).
func cellsOf(t *testing.T, body []byte) [][]byte {
	n := int(binary.BigEndian.Uint16(body))
	p := 2
	var out [][]byte
	for range n {
		l := int32(binary.BigEndian.Uint32(body[p:]))
		p += 4
		if l < 0 {
			out = append(out, nil)
			continue
		}
		out = append(out, body[p:p+int(l)])
		p += int(l)
	}
	return out
}

// FuzzMaskDataRow feeds the DataRow rewriter hostile rows: it must never
// panic, must produce a valid DataRow with the same number of cells, must
// leave unmasked columns byte for byte, and must never let a masked
// column's value through (a masked cell is the marker or NULL, or the
// original only when its detector found nothing).
func FuzzMaskDataRow(f *testing.F) {
	row := func(cells ...string) []byte {
		b := binary.BigEndian.AppendUint16(nil, uint16(len(cells)))
		for _, c := range cells {
			if c == "<null>" {
				b = binary.BigEndian.AppendUint32(b, 0xffffffff)
				continue
			}
			b = binary.BigEndian.AppendUint32(b, uint32(len(c)))
			b = append(b, c...)
		}
		return b
	}
	f.Add(row("1", "alice@example.com", "x"), []byte{0, 1, 3})
	f.Add(row("<null>", "a", ""), []byte{1, 2, 3})
	f.Add(row("no at sign", "a@b"), []byte{3})
	f.Add([]byte{0, 2, 0, 0, 0, 9, 'a'}, []byte{1})
	f.Add([]byte{0xff, 0xff}, []byte{1})
	f.Fuzz(func(t *testing.T, body, sel []byte) {
		if len(body) < 2 {
			if _, _, err := maskDataRow(nil, body, nil); err == nil {
				t.Fatal("a body without a column count was accepted")
			}
			return
		}
		n := int(int16(binary.BigEndian.Uint16(body)))
		if n < 0 || n > 64 {
			n = 1
		}
		cells := fuzzCells(n, sel)
		out, _, err := maskDataRow(make([]byte, 0, 8), body, cells)
		if err != nil {
			return
		}
		if wire.ValidateDataRow(body) != nil {
			t.Fatalf("an invalid DataRow was rewritten: %x", body)
		}
		if out[0] != 'D' || int(binary.BigEndian.Uint32(out[1:])) != len(out)-1 {
			t.Fatalf("bad frame header: %x", out[:5])
		}
		if err := wire.ValidateDataRow(out[5:]); err != nil {
			t.Fatalf("the rewritten row is invalid: %v", err)
		}
		in, got := cellsOf(t, body), cellsOf(t, out[5:])
		if len(in) != len(got) {
			t.Fatalf("%d cells became %d", len(in), len(got))
		}
		for i := range in {
			c := cells[i]
			switch {
			case c == nil || in[i] == nil:
				if !bytes.Equal(in[i], got[i]) || (in[i] == nil) != (got[i] == nil) {
					t.Fatalf("cell %d changed: %q -> %q", i, in[i], got[i])
				}
			case len(c.detectors) > 0 && !bytes.Contains(in[i], []byte("@")):
				if !bytes.Equal(in[i], got[i]) {
					t.Fatalf("cell %d without a detection changed", i)
				}
			case got[i] != nil && string(got[i]) != fuzzMarker:
				t.Fatalf("masked cell %d leaked: %q", i, got[i])
			}
		}
	})
}

// FuzzMaskCopyRow feeds the COPY row rewriter hostile rows in text and CSV
// formats: no panic, a well-formed CopyData frame, and a row that reads
// back with the same number of fields, the masked ones holding the
// masker's output.
func FuzzMaskCopyRow(f *testing.F) {
	f.Add([]byte("1\talice@example.com\t\\N\n"), false, byte('\t'), []byte{0, 1, 2})
	f.Add([]byte("1,\"a,b\"\"c\",\n"), true, byte(','), []byte{0, 1, 3})
	f.Add([]byte("x|y\\|z|\\x41\\101\r\n"), false, byte('|'), []byte{1, 1, 1})
	f.Add([]byte("\"unterminated\n"), true, byte(','), []byte{1})
	f.Fuzz(func(t *testing.T, data []byte, csv bool, delim byte, sel []byte) {
		if delim == '\n' || delim == '\r' || delim == '\\' || delim == '"' || delim == 0 {
			delim = ','
		}
		n := 1 + bytes.Count(data, []byte{delim})
		if n > 64 {
			return
		}
		m := &sessionMasking{cat: &maskCatalog{rules: make(mask.Rules, 4)}}
		for i := range m.cat.rules {
			m.cat.rules[i].Masker = mask.MaskerFunc(func(dst []byte, c mask.Cell) ([]byte, bool, error) {
				return append(dst, "M,\"\t\\\n"...), false, nil
			})
		}
		c := &copyMask{csv: csv, delim: delim, null: `\N`, cells: make([]*cellMask, n)}
		if csv {
			c.quote, c.escape, c.null = '"', '"', ""
		}
		for i := range c.cells {
			if len(sel) > 0 && sel[i%len(sel)]%2 == 1 {
				c.cells[i] = m.cellFor(lineageColumn(i%4), 25, mask.Text)
			}
		}
		out, _, err := c.row(nil, data)
		if err != nil {
			return
		}
		if out[0] != 'd' || int(binary.BigEndian.Uint32(out[1:])) != len(out)-1 {
			t.Fatalf("bad frame header %x", out[:5])
		}
		// Read it back: the same number of fields, masked ones decoded to
		// the masker's output (or NULL when they were NULL).
		back := &copyMask{csv: c.csv, delim: c.delim, quote: c.quote, escape: c.escape, null: c.null}
		body, p := out[5:], 0
		for i := 0; i < n; i++ {
			v, isNull, next, err := back.readField(body, p)
			if err != nil {
				t.Fatalf("the rewritten row does not read back: %v\n%q -> %q", err, data, body)
			}
			if c.cells[i] != nil && !isNull && string(v) != "M,\"\t\\\n" {
				t.Fatalf("masked field %d reads back as %q\n%q -> %q", i, v, data, body)
			}
			p = next
			if i < n-1 {
				if p >= len(body) || body[p] != c.delim {
					t.Fatalf("field %d not followed by the delimiter: %q", i, body)
				}
				p++
			}
		}
	})
}

func lineageColumn(rule int) lineage.Column {
	return lineage.Column{Taint: lineage.Taint{rule}}
}

// FuzzBindResultFormats feeds the Bind decoder of result formats hostile
// bodies: no panic, and what it accepts re-encodes to the same tail.
func FuzzBindResultFormats(f *testing.F) {
	f.Add([]byte("p\x00s\x00\x00\x01\x00\x01\x00\x01\x00\x00\x00\x01x\x00\x02\x00\x00\x00\x01"))
	f.Add([]byte("\x00\x00\x00\x00\x00\x00\x00\x00"))
	f.Add([]byte("\x00\x00\xff\xff"))
	f.Fuzz(func(t *testing.T, body []byte) {
		formats, err := bindResultFormats(body)
		if err != nil {
			return
		}
		tail := binary.BigEndian.AppendUint16(nil, uint16(len(formats)))
		for _, v := range formats {
			tail = binary.BigEndian.AppendUint16(tail, uint16(v))
		}
		if !bytes.HasSuffix(body, tail) {
			t.Fatalf("formats %v do not end the body %x", formats, body)
		}
	})
}
