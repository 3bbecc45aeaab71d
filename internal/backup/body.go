package backup

import (
	"bufio"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
)

// bodyReader serves the decrypted rows to sqlstore.Restore table by table,
// in header order, and verifies the end of the stream before the last table
// reports done, so the restore cannot commit a cut-off or altered backup.
type bodyReader struct {
	dec      io.Reader
	gz       *gzip.Reader
	r        *bufio.Reader
	tables   []Table
	cur      int   // index into tables; -1 before the first
	read     int64 // rows read of tables[cur]
	done     int64
	total    int64
	progress Progress
	finished bool
}

func newBodyReader(dec io.Reader, h Header, progress Progress) (*bodyReader, error) {
	gz, err := gzip.NewReader(dec)
	if err != nil {
		return nil, bodyError(err)
	}
	gz.Multistream(false)
	return &bodyReader{dec: dec, gz: gz, r: bufio.NewReaderSize(gz, 64<<10), tables: h.Tables, cur: -1,
		total: h.TotalRows(), progress: progress}, nil
}

// NextRow implements sqlstore.RowSource.
func (b *bodyReader) NextRow(table string) ([]any, error) {
	if b.cur < 0 || b.tables[b.cur].Name != table {
		next := b.cur + 1
		if (b.cur >= 0 && b.read != b.tables[b.cur].Rows) || next >= len(b.tables) || b.tables[next].Name != table {
			return nil, fmt.Errorf("backup: table %s requested out of order", table)
		}
		b.cur, b.read = next, 0
	}
	t := b.tables[b.cur]
	if b.read == t.Rows {
		if b.cur == len(b.tables)-1 && !b.finished {
			if err := b.finish(); err != nil {
				return nil, err
			}
		}
		return nil, io.EOF
	}
	tag, err := b.r.ReadByte()
	if err != nil {
		return nil, bodyError(unexpected(err))
	}
	if tag != recordRow {
		return nil, fmt.Errorf("backup: damaged body: expected a row of %s, found record %q", t.Name, tag)
	}
	values, err := readRow(b.r, len(t.Columns))
	if err != nil {
		return nil, bodyError(err)
	}
	b.read++
	b.done++
	if b.progress != nil && b.done%progressEvery == 0 {
		b.progress(b.done, b.total)
	}
	return values, nil
}

// finish checks the end record, the gzip checksum and the final encrypted
// segment: only then is the backup known to be complete and authentic.
func (b *bodyReader) finish() error {
	tag, err := b.r.ReadByte()
	if err != nil {
		return bodyError(unexpected(err))
	}
	if tag != recordEnd {
		return errors.New("backup: damaged body: more rows than the header lists")
	}
	if _, err := b.r.ReadByte(); !errors.Is(err, io.EOF) {
		return bodyError(fmt.Errorf("data after the end record (%v)", err))
	}
	if _, err := io.Copy(io.Discard, b.dec); err != nil {
		return bodyError(err)
	}
	b.finished = true
	return nil
}

func bodyError(err error) error {
	return fmt.Errorf("backup: the file is truncated or damaged: %w", err)
}
