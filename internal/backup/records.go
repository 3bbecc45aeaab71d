package backup

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// Body records. Each row is recordRow followed by one tagged value per
// column of its table (the header names tables, columns and row counts);
// recordEnd closes the body so a cut-off stream is never taken as complete.
const (
	recordRow byte = 'R'
	recordEnd byte = 'Z'
)

// Value tags keep SQL types exact: NULL, integer, float, boolean, text and
// bytes (an empty byte string is not NULL, and bytes are not text).
const (
	tagNull byte = iota
	tagInt
	tagFloat
	tagFalse
	tagTrue
	tagText
	tagBytes
)

// maxValueLen bounds a single text or byte value.
const maxValueLen = 1 << 30

// writeRow encodes one row. bufio.Writer errors are sticky, so checking the
// last write of each value catches a failure of any earlier one.
func writeRow(w *bufio.Writer, values []any) error {
	if err := w.WriteByte(recordRow); err != nil {
		return err
	}
	var buf [binary.MaxVarintLen64]byte
	for _, v := range values {
		var err error
		switch x := v.(type) {
		case nil:
			err = w.WriteByte(tagNull)
		case int64:
			w.WriteByte(tagInt)
			_, err = w.Write(buf[:binary.PutVarint(buf[:], x)])
		case float64:
			w.WriteByte(tagFloat)
			_, err = w.Write(binary.BigEndian.AppendUint64(buf[:0], math.Float64bits(x)))
		case bool:
			tag := tagFalse
			if x {
				tag = tagTrue
			}
			err = w.WriteByte(tag)
		case string:
			w.WriteByte(tagText)
			w.Write(buf[:binary.PutUvarint(buf[:], uint64(len(x)))])
			_, err = w.WriteString(x)
		case []byte:
			w.WriteByte(tagBytes)
			w.Write(buf[:binary.PutUvarint(buf[:], uint64(len(x)))])
			_, err = w.Write(x)
		default:
			return fmt.Errorf("backup: cannot encode a value of type %T", v)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// readRow reads one row of width values; the caller has consumed the tag.
func readRow(r *bufio.Reader, width int) ([]any, error) {
	values := make([]any, width)
	for i := range values {
		tag, err := r.ReadByte()
		if err != nil {
			return nil, unexpected(err)
		}
		switch tag {
		case tagNull:
		case tagInt:
			if values[i], err = binary.ReadVarint(r); err != nil {
				return nil, unexpected(err)
			}
		case tagFloat:
			var b [8]byte
			if _, err := io.ReadFull(r, b[:]); err != nil {
				return nil, unexpected(err)
			}
			values[i] = math.Float64frombits(binary.BigEndian.Uint64(b[:]))
		case tagFalse, tagTrue:
			values[i] = tag == tagTrue
		case tagText, tagBytes:
			n, err := binary.ReadUvarint(r)
			if err != nil {
				return nil, unexpected(err)
			}
			if n > maxValueLen {
				return nil, fmt.Errorf("backup: value of %d bytes is over the limit", n)
			}
			b := make([]byte, n)
			if _, err := io.ReadFull(r, b); err != nil {
				return nil, unexpected(err)
			}
			if tag == tagText {
				values[i] = string(b)
			} else {
				values[i] = b
			}
		default:
			return nil, fmt.Errorf("backup: unknown value tag %d", tag)
		}
	}
	return values, nil
}

// unexpected turns a clean EOF inside a record into a truncation error.
func unexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
