// Package plistsafe decodes property lists from untrusted sources (devices,
// uploads, the network) with howett.net/plist, guarding against what that
// library does not: binary plists that expand or allocate without bound, and
// the runtime panics it re-raises on malformed input.
package plistsafe

import (
	"encoding/binary"
	"errors"

	"howett.net/plist"
)

// A binary property list stores every object once and lets containers refer
// to the same object many times, so a few hundred bytes can describe a tree
// with billions of nodes. A container's header also claims its entry count,
// which the library allocates for before reading an entry; with zero-width
// references any count passes its checks, and a 51-byte file can make it
// ask for terabytes, which stops the process. BinaryExpandedSize measures
// the tree first, on the compact form.

var (
	// ErrTooComplex: the plist expands to more values than allowed.
	ErrTooComplex = errors.New("property list expands to too many values")
	// ErrMalformed: the plist's structure cannot be followed.
	ErrMalformed = errors.New("malformed binary property list")
)

const maxDepth = 256

// BinaryExpandedSize returns how many values the decoded tree of the
// binary plist b would hold, or ErrTooComplex once that passes limit, or
// ErrMalformed for a structure it cannot follow (references of a width
// other than 1 to 8 bytes, counts beyond the file, cycles). It reads only
// the trailer, offset table and container headers, each object once.
func BinaryExpandedSize(b []byte, limit uint64) (uint64, error) {
	const headerLen, trailerLen = 8, 32
	if len(b) < headerLen+trailerLen+1 {
		return 0, ErrMalformed
	}
	end := uint64(len(b) - trailerLen)
	tr := b[end:]
	offSize, refSize := uint64(tr[6]), uint64(tr[7])
	count := binary.BigEndian.Uint64(tr[8:])
	top := binary.BigEndian.Uint64(tr[16:])
	table := binary.BigEndian.Uint64(tr[24:])
	if offSize < 1 || offSize > 8 || refSize < 1 || refSize > 8 || count == 0 || count > end ||
		top >= count || table < headerLen || table > end || (end-table)/offSize < count {
		return 0, ErrMalformed
	}
	readUint := func(at, n uint64) (uint64, bool) {
		if at > end || n > end-at {
			return 0, false
		}
		var v uint64
		for _, c := range b[at : at+n] {
			v = v<<8 | uint64(c)
		}
		return v, true
	}
	const (
		unvisited = iota
		visiting
		done
	)
	state := make([]uint8, count)
	sizes := make([]uint64, count)
	var size func(obj uint64, depth int) (uint64, error)
	size = func(obj uint64, depth int) (uint64, error) {
		switch state[obj] {
		case done:
			return sizes[obj], nil
		case visiting: // a cycle: no finite tree
			return 0, ErrMalformed
		}
		if depth > maxDepth {
			return 0, ErrTooComplex
		}
		state[obj] = visiting
		at, ok := readUint(table+obj*offSize, offSize)
		if !ok || at < headerLen || at >= table {
			return 0, ErrMalformed
		}
		marker := b[at]
		kind, n, p := marker>>4, uint64(marker&0x0f), at+1
		total := uint64(1)
		if kind == 0xA || kind == 0xC || kind == 0xD { // array, set, dict
			if n == 0x0f { // count follows as an integer object
				if p >= table || b[p]>>4 != 0x1 || b[p]&0x0f > 3 {
					return 0, ErrMalformed
				}
				width := uint64(1) << (b[p] & 0x0f)
				if n, ok = readUint(p+1, width); !ok {
					return 0, ErrMalformed
				}
				p += 1 + width
			}
			refs := n
			if kind == 0xD {
				refs = 2 * n
			}
			if refs > (table-p)/refSize {
				return 0, ErrMalformed
			}
			for i := uint64(0); i < refs; i++ {
				child, _ := readUint(p+i*refSize, refSize)
				if child >= count {
					return 0, ErrMalformed
				}
				s, err := size(child, depth+1)
				if err != nil {
					return 0, err
				}
				if total += s; total > limit {
					return 0, ErrTooComplex
				}
			}
		}
		state[obj], sizes[obj] = done, total
		return total, nil
	}
	return size(top, 0)
}

// Unmarshal is plist.Unmarshal for untrusted data: a binary plist is
// measured first (BinaryExpandedSize, at most limit values), and the
// runtime panics the library re-raises on malformed input (an index out of
// range on a truncated file) become ErrMalformed.
func Unmarshal(data []byte, v any, limit uint64) (format int, err error) {
	if len(data) >= 6 && string(data[:6]) == "bplist" {
		if _, err := BinaryExpandedSize(data, limit); err != nil {
			return 0, err
		}
	}
	defer func() {
		if r := recover(); r != nil {
			format, err = 0, ErrMalformed
		}
	}()
	return plist.Unmarshal(data, v)
}
