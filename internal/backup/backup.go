package backup

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/tink-crypto/tink-go/v2/insecurecleartextkeyset"
	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/streamingaead"

	"github.com/steward-mdm/steward/internal/secrets"
	"github.com/steward-mdm/steward/internal/store/sqlstore"
)

// NeverBackedUp lists the tables a backup never contains and a restore never
// touches: the key vault (see the package doc), sessions and leases.
var NeverBackedUp = []string{"leases", "sessions", "tenant_keysets", "data_keys", "vault_tombstones"}

// Database is what Create and Restore need from the store.
type Database interface {
	Dump(ctx context.Context, exclude map[string]bool, begin func(sqlstore.DumpInfo) error,
		row func(table string, values []any) error) error
	Restore(ctx context.Context, info sqlstore.DumpInfo, keep map[string]bool, src sqlstore.RowSource) error
}

// Progress is told how many rows are done out of total; it is called
// every progressEvery rows and once at the end.
type Progress func(done, total int64)

const progressEvery = 1000

// keyAD binds the sealed data key to this use and to the exact header.
func keyAD(header []byte) []byte {
	return append([]byte("steward backup data key\x00"), header...)
}

func neverBackedUp() map[string]bool {
	m := map[string]bool{}
	for _, t := range NeverBackedUp {
		m[t] = true
	}
	return m
}

// Create writes a backup of db to w, encrypted under a fresh key sealed with
// sealer, and returns its header. progress may be nil.
func Create(ctx context.Context, db Database, sealer secrets.Sealer, w io.Writer, progress Progress) (Header, error) {
	var (
		h     Header
		enc   io.WriteCloser
		gz    *gzip.Writer
		bw    *bufio.Writer
		done  int64
		total int64
	)
	begin := func(info sqlstore.DumpInfo) error {
		h = Header{CreatedAt: time.Now().UTC(), Engine: info.Engine, SchemaVersion: info.SchemaVersion}
		for _, t := range info.Tables {
			h.Tables = append(h.Tables, Table{Name: t.Name, Columns: t.Columns, Rows: t.Rows})
		}
		total = h.TotalRows()
		var err error
		enc, err = writePreamble(w, h, sealer)
		if err != nil {
			return err
		}
		gz = gzip.NewWriter(enc)
		bw = bufio.NewWriterSize(gz, 64<<10)
		return nil
	}
	row := func(_ string, values []any) error {
		if err := writeRow(bw, values); err != nil {
			return fmt.Errorf("backup: writing: %w", err)
		}
		done++
		if progress != nil && done%progressEvery == 0 {
			progress(done, total)
		}
		return nil
	}
	if err := db.Dump(ctx, neverBackedUp(), begin, row); err != nil {
		return Header{}, fmt.Errorf("backup: reading the database: %w", err)
	}
	if err := errors.Join(bw.WriteByte(recordEnd), bw.Flush(), gz.Close(), enc.Close()); err != nil {
		return Header{}, fmt.Errorf("backup: writing: %w", err)
	}
	if progress != nil {
		progress(done, total)
	}
	return h, nil
}

// writePreamble writes the header and the sealed key and returns the
// encrypting writer for the body.
func writePreamble(w io.Writer, h Header, sealer secrets.Sealer) (io.WriteCloser, error) {
	raw, err := encodeHeader(h)
	if err != nil {
		return nil, err
	}
	handle, err := keyset.NewHandle(streamingaead.AES256GCMHKDF1MBKeyTemplate())
	if err != nil {
		return nil, fmt.Errorf("backup: generating the data key: %w", err)
	}
	var ks bytes.Buffer
	if err := insecurecleartextkeyset.Write(handle, keyset.NewBinaryWriter(&ks)); err != nil {
		return nil, fmt.Errorf("backup: serializing the data key: %w", err)
	}
	wrapped, err := sealer.Seal(ks.Bytes(), keyAD(raw))
	clear(ks.Bytes())
	if err != nil {
		return nil, fmt.Errorf("backup: sealing the data key: %w", err)
	}
	pre := binary.BigEndian.AppendUint32(raw, uint32(len(wrapped)))
	if _, err := w.Write(append(pre, wrapped...)); err != nil {
		return nil, fmt.Errorf("backup: writing the header: %w", err)
	}
	sa, err := streamingaead.New(handle)
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	enc, err := sa.NewEncryptingWriter(w, raw)
	if err != nil {
		return nil, fmt.Errorf("backup: starting encryption: %w", err)
	}
	return enc, nil
}

// Restore replaces the database's contents with the backup read from r, in
// one transaction: a damaged or truncated file, a wrong master key or a
// schema version mismatch leaves the database unchanged. Tables in
// NeverBackedUp are kept as they are. progress may be nil.
func Restore(ctx context.Context, db Database, sealer secrets.Sealer, r io.Reader, progress Progress) (Header, error) {
	h, raw, wrapped, err := readHeader(r)
	if err != nil {
		return Header{}, err
	}
	if err := h.validate(); err != nil {
		return Header{}, err
	}
	ks, err := sealer.Open(wrapped, keyAD(raw))
	if err != nil {
		return Header{}, errors.New("backup: cannot open the backup's data key: wrong master key, or the header was altered")
	}
	handle, err := insecurecleartextkeyset.Read(keyset.NewBinaryReader(bytes.NewReader(ks)))
	clear(ks)
	if err != nil {
		return Header{}, fmt.Errorf("backup: reading the data key: %w", err)
	}
	sa, err := streamingaead.New(handle)
	if err != nil {
		return Header{}, fmt.Errorf("backup: %w", err)
	}
	dec, err := sa.NewDecryptingReader(r, raw)
	if err != nil {
		return Header{}, fmt.Errorf("backup: starting decryption: %w", err)
	}
	body, err := newBodyReader(dec, h, progress)
	if err != nil {
		return Header{}, err
	}
	if len(h.Tables) == 0 {
		if err := body.finish(); err != nil {
			return Header{}, err
		}
	}
	info := sqlstore.DumpInfo{Engine: h.Engine, SchemaVersion: h.SchemaVersion}
	for _, t := range h.Tables {
		info.Tables = append(info.Tables, sqlstore.DumpTable{Name: t.Name, Columns: t.Columns, Rows: t.Rows})
	}
	if err := db.Restore(ctx, info, neverBackedUp(), body); err != nil {
		return Header{}, fmt.Errorf("backup: restoring (nothing was changed): %w", err)
	}
	if !body.finished {
		return Header{}, errors.New("backup: restore ended before the backup was read to its end")
	}
	if progress != nil {
		progress(body.done, body.total)
	}
	return h, nil
}

func (h Header) validate() error {
	seen := map[string]bool{}
	for _, t := range h.Tables {
		if t.Name == "" || seen[t.Name] || len(t.Columns) == 0 || t.Rows < 0 {
			return fmt.Errorf("backup: header lists table %q twice, without columns or with a negative row count", t.Name)
		}
		seen[t.Name] = true
	}
	return nil
}
