package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
	"testing/iotest"

	"github.com/jackc/pgx/v5/pgproto3"
)

// FuzzReader feeds arbitrary bytes to the frame reader, in small reads:
// every message it returns must be a well-formed frame within the limit,
// and it must never panic or loop.
func FuzzReader(f *testing.F) {
	f.Add(frame('Q', []byte("select 1\x00")))
	f.Add(append(frame('S', nil), 'Q', 0x7f, 0xff, 0xff, 0xff))
	f.Add([]byte{'d', 0, 0, 0, 2})
	f.Add(append(frame('P', []byte("\x00select $1\x00\x00\x01\x00\x00\x00\x17")), frame('B', make([]byte, 300))...))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := NewReader(iotest.HalfReader(bytes.NewReader(data)), 256)
		for range len(data) + 1 {
			ready := r.MessageReady()
			m, err := r.Next()
			if err != nil {
				var tooLarge *TooLargeError
				if err != io.EOF && err != io.ErrUnexpectedEOF && !errors.Is(err, ErrMalformed) && !errors.As(err, &tooLarge) {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			_ = ready
			if len(m.Raw) != 5+len(m.Body) || m.Raw[0] != m.Type || len(m.Body) > 256 {
				t.Fatalf("bad frame: type %q raw %d body %d", m.Type, len(m.Raw), len(m.Body))
			}
			if int(binary.BigEndian.Uint32(m.Raw[1:])) != len(m.Body)+4 {
				t.Fatalf("length word does not match the body")
			}
		}
		t.Fatal("Next did not reach the end of the input")
	})
}

// FuzzStartup feeds arbitrary startup-phase packets to the startup readers.
func FuzzStartup(f *testing.F) {
	f.Add(append(binary.BigEndian.AppendUint32([]byte{0, 0, 0, 0}, ProtocolVersion30), "user\x00a\x00\x00"...))
	f.Add([]byte{0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f})
	f.Add([]byte{0, 0, 0, 16, 0x04, 0xd2, 0x16, 0x2e, 0, 0, 0, 1, 1, 2, 3, 4})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) >= 4 {
			// Make the length word usually right, so the parsers are reached.
			binary.BigEndian.PutUint32(data, uint32(len(data)))
		}
		pkt, err := NewReader(bytes.NewReader(data), 0).ReadStartup()
		if err != nil {
			return
		}
		switch RequestCode(pkt) {
		case CodeCancelRequest:
			if k, err := ParseCancelRequest(pkt); err == nil && (len(k.Secret) < 4 || len(k.Secret) > 256) {
				t.Fatalf("accepted a cancel key of %d bytes", len(k.Secret))
			}
		default:
			st, err := ParseStartup(pkt)
			if err != nil {
				return
			}
			seen := map[string]bool{}
			for _, p := range st.Params {
				if p.Name == "" || seen[p.Name] || bytes.IndexByte([]byte(p.Name+p.Value), 0) >= 0 {
					t.Fatalf("bad parameter accepted: %q=%q", p.Name, p.Value)
				}
				seen[p.Name] = true
			}
		}
	})
}

// FuzzDecoders runs every body decoder on arbitrary bytes, and checks the
// DataRow validator against pgproto3's decoder: a row we accept must decode
// there with the same number of columns.
func FuzzDecoders(f *testing.F) {
	f.Add(byte('D'), dataRow(3, -1, 0))
	f.Add(byte('E'), []byte("SERROR\x00C42601\x00Mx\x00\x00"))
	f.Add(byte('P'), append([]byte("s\x00select\x00"), 0, 0))
	f.Add(byte('F'), []byte{0, 0, 4, 0xd2, 0, 0, 0, 1, 0, 0, 0, 1, 7, 0, 0})
	f.Add(byte('B'), []byte("p\x00s\x00\x00\x01\x00\x01\x00\x02\x00\x00\x00\x01x\xff\xff\xff\xff\x00\x00"))
	f.Fuzz(func(t *testing.T, typ byte, body []byte) {
		if params, err := BindParams(nil, body); err == nil {
			// Every value lies inside the body: checked lengths, no
			// allocation beyond the parameter list.
			var pb pgproto3.Bind
			if derr := pb.Decode(body); derr != nil {
				t.Fatalf("we accepted a Bind pgproto3 rejects: %v", derr)
			}
			if len(pb.Parameters) != len(params) {
				t.Fatalf("%d parameters, pgproto3 read %d", len(params), len(pb.Parameters))
			}
			for i, p := range params {
				if (p.Value == nil) != (pb.Parameters[i] == nil) || string(p.Value) != string(pb.Parameters[i]) {
					t.Fatalf("parameter %d differs", i)
				}
			}
		}
		if err := ValidateDataRow(body); err == nil {
			var row pgproto3.DataRow
			if err := row.Decode(body); err != nil {
				t.Fatalf("we accepted a DataRow pgproto3 rejects: %v", err)
			}
			if len(row.Values) != int(binary.BigEndian.Uint16(body)) {
				t.Fatalf("column count differs")
			}
		}
		ErrorFields(body)
		ParseMessage(body)
		FunctionOID(body)
		Target(body)
		BindNames(body)
		ExecutePortal(body)
		QueryText(body)
		CommandTag(body)
		ReadyStatus(body)
	})
}
