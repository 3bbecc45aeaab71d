package payloads

import (
	"encoding/binary"
	"errors"
)

// A binary property list stores every object once and lets containers refer
// to the same object many times, so a few hundred bytes can describe a tree
// with billions of nodes. howett.net/plist expands that tree when decoding,
// so binaryPlistExpandedSize measures it first, on the compact form.

var (
	errPlistTooComplex = errors.New("property list expands to too many values")
	errPlistMalformed  = errors.New("malformed binary property list")
)

const maxPlistDepth = 256

// binaryPlistExpandedSize returns how many values the decoded tree of the
// binary plist b would hold, or errPlistTooComplex once that passes limit,
// or errPlistMalformed for a structure it cannot follow. It reads only the
// trailer, offset table and container headers, each object once.
func binaryPlistExpandedSize(b []byte, limit uint64) (uint64, error) {
	const headerLen, trailerLen = 8, 32
	if len(b) < headerLen+trailerLen+1 {
		return 0, errPlistMalformed
	}
	end := uint64(len(b) - trailerLen)
	tr := b[end:]
	offSize, refSize := uint64(tr[6]), uint64(tr[7])
	count := binary.BigEndian.Uint64(tr[8:])
	top := binary.BigEndian.Uint64(tr[16:])
	table := binary.BigEndian.Uint64(tr[24:])
	if offSize < 1 || offSize > 8 || refSize < 1 || refSize > 8 || count == 0 || count > end ||
		top >= count || table < headerLen || table > end || (end-table)/offSize < count {
		return 0, errPlistMalformed
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
			return 0, errPlistMalformed
		}
		if depth > maxPlistDepth {
			return 0, errPlistTooComplex
		}
		state[obj] = visiting
		at, ok := readUint(table+obj*offSize, offSize)
		if !ok || at < headerLen || at >= table {
			return 0, errPlistMalformed
		}
		marker := b[at]
		kind, n, p := marker>>4, uint64(marker&0x0f), at+1
		total := uint64(1)
		if kind == 0xA || kind == 0xC || kind == 0xD { // array, set, dict
			if n == 0x0f { // count follows as an integer object
				if p >= table || b[p]>>4 != 0x1 || b[p]&0x0f > 3 {
					return 0, errPlistMalformed
				}
				width := uint64(1) << (b[p] & 0x0f)
				if n, ok = readUint(p+1, width); !ok {
					return 0, errPlistMalformed
				}
				p += 1 + width
			}
			refs := n
			if kind == 0xD {
				refs = 2 * n
			}
			if refs > (table-p)/refSize {
				return 0, errPlistMalformed
			}
			for i := uint64(0); i < refs; i++ {
				child, _ := readUint(p+i*refSize, refSize)
				if child >= count {
					return 0, errPlistMalformed
				}
				s, err := size(child, depth+1)
				if err != nil {
					return 0, err
				}
				if total += s; total > limit {
					return 0, errPlistTooComplex
				}
			}
		}
		state[obj], sizes[obj] = done, total
		return total, nil
	}
	return size(top, 0)
}
