package proxy

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/pgwarden/pgwarden/mask"
)

// errBadDataRow is a DataRow the gateway cannot take apart.
var errBadDataRow = errors.New("malformed DataRow")

// maskDataRow appends to dst[:0] the DataRow message (type byte included)
// whose body is body with each cell of a column that has a mask in cells
// masked. NULLs stay NULL; cells whose detectors find nothing pass
// unchanged. Every length is checked against the body and against the
// protocol's limits, so a hostile server cannot make it read or write out of
// bounds, and a masker's failure is an error: the unmasked value is never
// returned. It also returns how many cells it masked.
func maskDataRow(dst, body []byte, cells []*cellMask) (_ []byte, _ int, err error) {
	defer recoverMasker(&err)
	masked := 0
	if len(body) < 2 {
		return nil, 0, errBadDataRow
	}
	n := int(int16(binary.BigEndian.Uint16(body)))
	if n != len(cells) {
		return nil, 0, fmt.Errorf("%w: %d columns where the result has %d", errBadDataRow, n, len(cells))
	}
	dst = append(dst[:0], 'D', 0, 0, 0, 0, body[0], body[1])
	p := 2
	run := p // the start of the cells copied as they are, not yet appended
	for i := 0; i < n; i++ {
		if len(body)-p < 4 {
			return nil, 0, errBadDataRow
		}
		start := p
		l := int32(binary.BigEndian.Uint32(body[p:]))
		p += 4
		if l == -1 {
			continue // NULL stays NULL
		}
		if l < 0 || int(l) > len(body)-p {
			return nil, 0, errBadDataRow
		}
		v := body[p : p+int(l)]
		p += int(l)
		c := cells[i]
		if c == nil || c.passes(v) {
			continue
		}
		masked++
		dst = append(dst, body[run:start]...)
		run = p
		at := len(dst)
		dst = append(dst, 0, 0, 0, 0)
		out, null, err := c.masker.Mask(dst, mask.Cell{Type: c.typ, Format: c.format, Value: v})
		if err != nil {
			return nil, 0, &maskerError{column: i + 1, err: err}
		}
		if null {
			dst = append(dst[:at], 0xff, 0xff, 0xff, 0xff)
			continue
		}
		if len(out) < at+4 {
			return nil, 0, fmt.Errorf("masking column %d: the masker returned a short buffer", i+1)
		}
		size := len(out) - at - 4
		if size > math.MaxInt32 {
			return nil, 0, fmt.Errorf("masking column %d: the masked value is too large", i+1)
		}
		binary.BigEndian.PutUint32(out[at:], uint32(size))
		dst = out
	}
	dst = append(dst, body[run:p]...)
	if p != len(body) {
		return nil, 0, fmt.Errorf("%w: %d bytes after the last column", errBadDataRow, len(body)-p)
	}
	if len(dst)-1 > math.MaxInt32 {
		return nil, 0, errors.New("the masked row is too large")
	}
	binary.BigEndian.PutUint32(dst[1:], uint32(len(dst)-1))
	return dst, masked, nil
}

// bindResultFormats returns the result-column format codes of a Bind
// message body.
func bindResultFormats(body []byte) ([]int16, error) {
	p := 0
	skipString := func() bool {
		for i := p; i < len(body); i++ {
			if body[i] == 0 {
				p = i + 1
				return true
			}
		}
		return false
	}
	u16 := func() (int, bool) {
		if len(body)-p < 2 {
			return 0, false
		}
		v := int(int16(binary.BigEndian.Uint16(body[p:])))
		p += 2
		return v, v >= 0
	}
	portalOK := skipString()
	statementOK := skipString()
	if !portalOK || !statementOK {
		return nil, errors.New("malformed Bind")
	}
	nf, ok := u16()
	if !ok || len(body)-p < 2*nf {
		return nil, errors.New("malformed Bind")
	}
	p += 2 * nf
	np, ok := u16()
	if !ok {
		return nil, errors.New("malformed Bind")
	}
	for range np {
		if len(body)-p < 4 {
			return nil, errors.New("malformed Bind")
		}
		l := int32(binary.BigEndian.Uint32(body[p:]))
		p += 4
		if l > 0 {
			if int(l) > len(body)-p {
				return nil, errors.New("malformed Bind")
			}
			p += int(l)
		}
	}
	nr, ok := u16()
	if !ok || len(body)-p != 2*nr {
		return nil, errors.New("malformed Bind")
	}
	formats := make([]int16, nr)
	for i := range formats {
		formats[i] = int16(binary.BigEndian.Uint16(body[p+2*i:]))
	}
	return formats, nil
}

// resultFormat returns column i's format under a Bind's format codes.
func resultFormat(formats []int16, i int) int16 {
	switch {
	case len(formats) == 0:
		return 0
	case len(formats) == 1:
		return formats[0]
	case i < len(formats):
		return formats[i]
	}
	return 0
}
