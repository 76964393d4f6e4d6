package wire

import (
	"encoding/binary"
	"errors"
	"testing"
)

func dataRow(lengths ...int32) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(len(lengths)))
	for _, l := range lengths {
		b = binary.BigEndian.AppendUint32(b, uint32(l))
		if l > 0 {
			b = append(b, make([]byte, l)...)
		}
	}
	return b
}

func TestValidateDataRow(t *testing.T) {
	good := [][]byte{dataRow(), dataRow(3, -1, 0), dataRow(1000)}
	for i, b := range good {
		if err := ValidateDataRow(b); err != nil {
			t.Errorf("good row %d: %v", i, err)
		}
	}
	negative := binary.BigEndian.AppendUint32([]byte{0, 1}, 0xfffffffe) // length -2
	overflow := binary.BigEndian.AppendUint32([]byte{0, 1}, 0x7fffffff)
	bad := map[string][]byte{
		"empty":          nil,
		"negative":       negative,
		"overflow":       overflow,
		"truncated":      dataRow(3, 4)[:12],
		"trailing bytes": append(dataRow(1), 9),
		"count too high": append([]byte{0, 5}, dataRow(1)[2:]...),
	}
	for name, b := range bad {
		if err := ValidateDataRow(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", name, err)
		}
	}
}

func TestParseStartup(t *testing.T) {
	pkt := binary.BigEndian.AppendUint32(nil, ProtocolVersion30)
	pkt = append(pkt, "user\x00alice\x00database\x00\x00application_name\x00psql\x00\x00"...)
	st, err := ParseStartup(pkt)
	if err != nil {
		t.Fatal(err)
	}
	if st.Major != 3 || st.Minor != 0 || len(st.Params) != 3 {
		t.Fatalf("got %+v", st)
	}
	if v, ok := st.Get("database"); !ok || v != "" {
		t.Fatalf("database = %q, %v", v, ok)
	}
	bad := map[string]string{
		"duplicate":    "user\x00a\x00user\x00b\x00\x00",
		"unterminated": "user\x00a\x00",
		"no value":     "user\x00",
		"empty name":   "\x00a\x00\x00",
		"not utf8":     "user\x00\xff\x00\x00",
		"nothing":      "",
	}
	for name, rest := range bad {
		pkt := append(binary.BigEndian.AppendUint32(nil, ProtocolVersion30), rest...)
		if _, err := ParseStartup(pkt); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", name, err)
		}
	}
}

func TestFunctionOID(t *testing.T) {
	body := binary.BigEndian.AppendUint32(nil, 1234)
	body = append(body, 0, 1, 0, 1) // one format code: binary
	body = append(body, 0, 2)       // two arguments
	body = binary.BigEndian.AppendUint32(body, 4)
	body = append(body, 0, 0, 0, 7)
	body = binary.BigEndian.AppendUint32(body, 0xffffffff) // NULL
	body = append(body, 0, 1)                              // result format
	oid, err := FunctionOID(body)
	if err != nil || oid != 1234 {
		t.Fatalf("FunctionOID = %d, %v", oid, err)
	}
	if _, err := FunctionOID(body[:len(body)-1]); !errors.Is(err, ErrMalformed) {
		t.Fatalf("truncated: %v", err)
	}
}

func TestErrorFields(t *testing.T) {
	body := []byte("SERROR\x00VERROR\x00C42601\x00Msyntax error\x00\x00")
	sev, code, msg, err := ErrorFields(body)
	if err != nil || sev != "ERROR" || code != "42601" || msg != "syntax error" {
		t.Fatalf("got %q %q %q %v", sev, code, msg, err)
	}
	if _, _, _, err := ErrorFields(body[:len(body)-1]); !errors.Is(err, ErrMalformed) {
		t.Fatalf("unterminated: %v", err)
	}
}

func TestParseMessage(t *testing.T) {
	body := append([]byte("s1\x00select $1\x00"), 0, 1, 0, 0, 0, 23)
	p, err := ParseMessage(body)
	if err != nil || p.Name != "s1" || p.Query != "select $1" {
		t.Fatalf("got %+v, %v", p, err)
	}
	if _, err := ParseMessage(body[:len(body)-2]); !errors.Is(err, ErrMalformed) {
		t.Fatalf("short parameter list: %v", err)
	}
}
