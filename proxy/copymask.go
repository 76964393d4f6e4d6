package proxy

import (
	"encoding/binary"
	"errors"
	"math"

	"github.com/pgwarden/pgwarden/internal/lineage"
	"github.com/pgwarden/pgwarden/mask"
)

// copyMask masks the rows of a COPY TO STDOUT in text or CSV format. The
// server sends each row (and the header) as one CopyData message; the
// gateway takes each apart with the statement's options, masks the fields
// of masked columns (as text: COPY's rows are text) and puts it back
// together, escaped or quoted as COPY would.
type copyMask struct {
	csv                  bool
	delim, quote, escape byte
	null                 string
	header               bool // the next message is the header line
	cells                []*cellMask
	field                []byte // scratch: a field's decoded value
	masked               []byte // scratch: the masker's output
}

// newCopyMask builds the masks of a COPY's n columns, or nil when none is
// masked.
func (m *sessionMasking) newCopyMask(plan *lineage.Plan, n int) (*copyMask, error) {
	outs, err := expandOutputs(plan.Outputs, n)
	if err != nil {
		return nil, err
	}
	o := plan.CopyOptions
	c := &copyMask{csv: o.CSV, delim: '\t', null: `\N`, header: o.Header && o.CSV}
	if o.CSV {
		c.delim, c.quote, c.null = ',', '"', ""
	}
	for _, opt := range []struct {
		val string
		dst *byte
	}{{o.Delimiter, &c.delim}, {o.Quote, &c.quote}, {o.Escape, &c.escape}} {
		switch len(opt.val) {
		case 0:
		case 1:
			*opt.dst = opt.val[0]
		default:
			return nil, errors.New("a COPY option that is not a single byte")
		}
	}
	if c.escape == 0 {
		c.escape = c.quote
	}
	if o.Null != nil {
		c.null = *o.Null
	}
	any := false
	c.cells = make([]*cellMask, n)
	for i, col := range outs {
		if len(col.Taint) == 0 {
			if m.everywhere != nil {
				e := *m.everywhere
				e.typ, e.format = 25, mask.Text
				c.cells[i] = &e
				any = true
			}
			continue
		}
		any = true
		c.cells[i] = m.cellFor(col, 25, mask.Text)
	}
	if !any {
		return nil, nil
	}
	return c, nil
}

// row appends to dst[:0] the CopyData message for data, one row, with its
// masked fields masked, and returns how many it masked.
func (c *copyMask) row(dst, data []byte) (_ []byte, _ int, err error) {
	defer recoverMasker(&err)
	dst = append(dst[:0], 'd', 0, 0, 0, 0)
	if c.header {
		c.header = false
		return c.finish(append(dst, data...), 0)
	}
	masked, col, p := 0, 0, 0
	for {
		if col >= len(c.cells) {
			return nil, 0, errors.New("a COPY row with more fields than columns")
		}
		start := p
		value, isNull, next, err := c.readField(data, p)
		if err != nil {
			return nil, 0, err
		}
		cm := c.cells[col]
		switch {
		case cm == nil || isNull:
			dst = append(dst, data[start:next]...)
		default:
			if cm.passes(value) {
				dst = append(dst, data[start:next]...)
				break
			}
			out, null, err := cm.masker.Mask(c.masked[:0], mask.Cell{Type: cm.typ, Format: mask.Text, Value: value})
			if err != nil {
				return nil, 0, &maskerError{column: col + 1, copy: true, err: err}
			}
			c.masked = out
			masked++
			if null {
				dst = append(dst, c.null...)
			} else {
				dst = c.appendField(dst, out)
			}
		}
		p = next
		col++
		if p >= len(data) {
			return nil, 0, errors.New("a COPY row without an end of line")
		}
		if data[p] == c.delim {
			dst = append(dst, c.delim)
			p++
			continue
		}
		// The end of the row: what the server wrote, as it wrote it.
		if col != len(c.cells) {
			return nil, 0, errors.New("a COPY row with fewer fields than columns")
		}
		if rest := data[p:]; string(rest) != "\n" && string(rest) != "\r\n" {
			return nil, 0, errors.New("a COPY row with text after its end of line")
		}
		dst = append(dst, data[p:]...)
		return c.finish(dst, masked)
	}
}

func (c *copyMask) finish(dst []byte, masked int) ([]byte, int, error) {
	if len(dst)-1 > math.MaxInt32 {
		return nil, 0, errors.New("the masked COPY row is too large")
	}
	binary.BigEndian.PutUint32(dst[1:], uint32(len(dst)-1))
	return dst, masked, nil
}

// readField reads the field at p: its value (decoded into c.field), whether
// it is NULL, and where it ends (at its delimiter or end of line).
func (c *copyMask) readField(data []byte, p int) ([]byte, bool, int, error) {
	c.field = c.field[:0]
	if c.csv {
		if p < len(data) && data[p] == c.quote {
			p++
			for {
				if p >= len(data) {
					return nil, false, 0, errors.New("an unterminated quoted COPY field")
				}
				b := data[p]
				switch {
				case b == c.escape && p+1 < len(data) && (data[p+1] == c.quote || data[p+1] == c.escape) && (c.escape != c.quote || data[p+1] == c.quote):
					c.field = append(c.field, data[p+1])
					p += 2
				case b == c.quote:
					return c.field, false, p + 1, nil
				default:
					c.field = append(c.field, b)
					p++
				}
			}
		}
		start := p
		for p < len(data) && data[p] != c.delim && data[p] != '\n' && data[p] != '\r' {
			p++
		}
		c.field = append(c.field, data[start:p]...)
		return c.field, string(data[start:p]) == c.null, p, nil
	}
	start := p
	for p < len(data) && data[p] != c.delim && data[p] != '\n' && data[p] != '\r' {
		b := data[p]
		if b != '\\' {
			c.field = append(c.field, b)
			p++
			continue
		}
		if p+1 >= len(data) {
			return nil, false, 0, errors.New("a COPY field ending in a backslash")
		}
		p++
		switch e := data[p]; e {
		case 'b':
			c.field = append(c.field, '\b')
		case 'f':
			c.field = append(c.field, '\f')
		case 'n':
			c.field = append(c.field, '\n')
		case 'r':
			c.field = append(c.field, '\r')
		case 't':
			c.field = append(c.field, '\t')
		case 'v':
			c.field = append(c.field, '\v')
		case 'x':
			v, n := 0, 0
			for n < 2 && p+1 < len(data) && hexDigit(data[p+1]) >= 0 {
				v = v*16 + hexDigit(data[p+1])
				p++
				n++
			}
			if n == 0 {
				c.field = append(c.field, 'x')
			} else {
				c.field = append(c.field, byte(v))
			}
		default:
			if e >= '0' && e <= '7' {
				v, n := int(e-'0'), 1
				for n < 3 && p+1 < len(data) && data[p+1] >= '0' && data[p+1] <= '7' {
					v = v*8 + int(data[p+1]-'0')
					p++
					n++
				}
				c.field = append(c.field, byte(v))
			} else {
				c.field = append(c.field, e)
			}
		}
		p++
	}
	return c.field, string(data[start:p]) == c.null, p, nil
}

func hexDigit(b byte) int {
	switch {
	case b >= '0' && b <= '9':
		return int(b - '0')
	case b >= 'a' && b <= 'f':
		return int(b-'a') + 10
	case b >= 'A' && b <= 'F':
		return int(b-'A') + 10
	}
	return -1
}

// appendField appends a value as COPY writes it in the session's format.
func (c *copyMask) appendField(dst, v []byte) []byte {
	if c.csv {
		needs := len(v) == 0 && c.null == "" || string(v) == c.null
		for _, b := range v {
			if b == c.delim || b == c.quote || b == c.escape || b == '\n' || b == '\r' {
				needs = true
				break
			}
		}
		if !needs {
			return append(dst, v...)
		}
		dst = append(dst, c.quote)
		for _, b := range v {
			if b == c.quote || b == c.escape {
				dst = append(dst, c.escape)
			}
			dst = append(dst, b)
		}
		return append(dst, c.quote)
	}
	for _, b := range v {
		switch b {
		case '\\':
			dst = append(dst, '\\', '\\')
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		case '\b':
			dst = append(dst, '\\', 'b')
		case '\f':
			dst = append(dst, '\\', 'f')
		case '\v':
			dst = append(dst, '\\', 'v')
		default:
			if b == c.delim {
				dst = append(dst, '\\')
			}
			dst = append(dst, b)
		}
	}
	return dst
}
