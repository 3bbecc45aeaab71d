package backup

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"math"
	"reflect"
	"testing"
)

func TestRowEncodingKeepsTypesExact(t *testing.T) {
	row := []any{nil, int64(0), int64(math.MinInt64), int64(math.MaxInt64), 3.25, true, false,
		"", "text\x00with nul", []byte{}, []byte("bytes"), []byte{0, 0xff}}
	var buf bytes.Buffer
	w := bufio.NewWriter(&buf)
	if err := writeRow(w, row); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(&buf)
	if tag, err := r.ReadByte(); err != nil || tag != recordRow {
		t.Fatalf("record tag = %q, %v", tag, err)
	}
	got, err := readRow(r, len(row))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, row) {
		t.Fatalf("round trip changed the row:\n got %#v\nwant %#v", got, row)
	}
}

func TestRowDecodingRejectsDamage(t *testing.T) {
	var buf bytes.Buffer
	w := bufio.NewWriter(&buf)
	if err := writeRow(w, []any{"hello", []byte("world")}); err != nil {
		t.Fatal(err)
	}
	w.Flush()
	full := buf.Bytes()[1:]
	if _, err := readRow(bufio.NewReader(bytes.NewReader(full[:len(full)-2])), 2); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("truncated row: err = %v, want unexpected EOF", err)
	}
	bad := append([]byte{99}, full...)
	if _, err := readRow(bufio.NewReader(bytes.NewReader(bad)), 2); err == nil {
		t.Error("unknown tag accepted")
	}
	if err := writeRow(bufio.NewWriter(io.Discard), []any{struct{}{}}); err == nil {
		t.Error("unsupported type encoded")
	}
}
