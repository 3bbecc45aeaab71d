package backup

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// Magic opens every backup file.
const Magic = "STEWARD-BACKUP"

// FormatVersion is the layout this package writes and the only one it reads.
const FormatVersion uint16 = 1

// Size limits for the plaintext parts, so a damaged file cannot make the
// reader allocate without bound.
const (
	maxHeaderLen     = 1 << 20
	maxWrappedKeyLen = 64 << 10
)

// ErrNotBackup means the file does not start with the backup magic.
var ErrNotBackup = errors.New("backup: not a Steward backup file")

// Header is the plaintext description of a backup. It holds no row data.
type Header struct {
	CreatedAt     time.Time `json:"created_at"`
	Engine        string    `json:"engine"`
	SchemaVersion int       `json:"schema_version"`
	Tables        []Table   `json:"tables"`
}

// Table is one dumped table, in restore order.
type Table struct {
	Name    string   `json:"name"`
	Columns []string `json:"columns"`
	Rows    int64    `json:"rows"`
}

// TotalRows is the sum of all tables' row counts.
func (h Header) TotalRows() int64 {
	var n int64
	for _, t := range h.Tables {
		n += t.Rows
	}
	return n
}

// encodeHeader lays out magic | version | len | JSON. These bytes are the
// associated data for the sealed key and the encrypted body.
func encodeHeader(h Header) ([]byte, error) {
	js, err := json.Marshal(h)
	if err != nil {
		return nil, fmt.Errorf("backup: encoding header: %w", err)
	}
	if len(js) > maxHeaderLen {
		return nil, fmt.Errorf("backup: header is %d bytes, over the %d limit", len(js), maxHeaderLen)
	}
	var b bytes.Buffer
	b.WriteString(Magic)
	_ = binary.Write(&b, binary.BigEndian, FormatVersion)
	_ = binary.Write(&b, binary.BigEndian, uint32(len(js)))
	b.Write(js)
	return b.Bytes(), nil
}

// readHeader reads the header and the sealed key, returning the raw header
// bytes for authentication.
func readHeader(r io.Reader) (h Header, raw, wrappedKey []byte, err error) {
	prefix := make([]byte, len(Magic)+2+4)
	if _, err := io.ReadFull(r, prefix); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return h, nil, nil, ErrNotBackup
		}
		return h, nil, nil, fmt.Errorf("backup: reading header: %w", err)
	}
	if string(prefix[:len(Magic)]) != Magic {
		return h, nil, nil, ErrNotBackup
	}
	if v := binary.BigEndian.Uint16(prefix[len(Magic):]); v != FormatVersion {
		return h, nil, nil, fmt.Errorf("backup: format version %d is not supported (this steward reads version %d)", v, FormatVersion)
	}
	n := binary.BigEndian.Uint32(prefix[len(Magic)+2:])
	if n > maxHeaderLen {
		return h, nil, nil, fmt.Errorf("backup: header length %d is over the %d limit: file damaged", n, maxHeaderLen)
	}
	js := make([]byte, n)
	if _, err := io.ReadFull(r, js); err != nil {
		return h, nil, nil, fmt.Errorf("backup: file truncated in the header: %w", err)
	}
	if err := json.Unmarshal(js, &h); err != nil {
		return h, nil, nil, fmt.Errorf("backup: header is damaged: %w", err)
	}
	var keyLen uint32
	if err := binary.Read(r, binary.BigEndian, &keyLen); err != nil {
		return h, nil, nil, fmt.Errorf("backup: file truncated in the header: %w", err)
	}
	if keyLen == 0 || keyLen > maxWrappedKeyLen {
		return h, nil, nil, fmt.Errorf("backup: sealed key length %d is invalid: file damaged", keyLen)
	}
	wrappedKey = make([]byte, keyLen)
	if _, err := io.ReadFull(r, wrappedKey); err != nil {
		return h, nil, nil, fmt.Errorf("backup: file truncated in the header: %w", err)
	}
	return h, append(prefix, js...), wrappedKey, nil
}

// ReadHeader returns a backup's plaintext header without decrypting anything.
func ReadHeader(r io.Reader) (Header, error) {
	h, _, _, err := readHeader(r)
	return h, err
}
