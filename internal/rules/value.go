package rules

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"
)

// valueHelp says what value an operator on a type takes, for error messages.
func valueHelp(t Type, o op) string {
	switch o {
	case opIn, opNotIn:
		return "a non-empty list of " + scalarHelp(t)
	case opContainsAny, opContainsAll:
		return `a non-empty list of strings, such as ["com.example.app"]`
	case opWithin, opOlderThan:
		return `a duration string such as "7d", "12h" or "1d12h" (units w, d, h, m, s)`
	case opPrefix, opContains:
		return "a string"
	}
	return scalarHelp(t)
}

func scalarHelp(t Type) string {
	switch t {
	case TypeVersion:
		return `versions written as strings of dotted numbers, such as "17.4.1"`
	case TypeNumber:
		return "numbers"
	case TypeBool:
		return "true or false"
	case TypeTime:
		return `RFC 3339 times, such as "2026-01-31T00:00:00Z"`
	}
	return "strings"
}

// decodeValue checks v against the condition's type and operator and stores
// it, decoded, in n.
func decodeValue(n *node, v *jsonValue, path string) error {
	switch n.op {
	case opWithin, opOlderThan:
		if v.kind != jsonString {
			return wrongValue(path, v, n)
		}
		d, ok := parseDuration(v.s)
		if !ok {
			return errorAt(path, "is not a valid duration; "+n.op.String()+" needs "+valueHelp(n.typ, n.op))
		}
		n.dur = d
		return nil
	case opPrefix, opContains:
		if v.kind != jsonString {
			return wrongValue(path, v, n)
		}
		return decodeString(v, path, &n.str)
	case opIn, opNotIn, opContainsAny, opContainsAll:
		if v.kind != jsonArray {
			return wrongValue(path, v, n)
		}
		if len(v.arr) == 0 {
			return errorAt(path, "is an empty list; "+n.op.String()+" needs "+valueHelp(n.typ, n.op))
		}
		if len(v.arr) > maxListLen {
			return errorAt(path, fmt.Sprintf("has %d values; the limit is %d", len(v.arr), maxListLen))
		}
		for i, elem := range v.arr {
			if err := decodeListElem(n, elem, path+"["+strconv.Itoa(i)+"]"); err != nil {
				return err
			}
		}
		// Sorted and unique: binary search in Eval, one canonical JSON form.
		slices.Sort(n.strs)
		n.strs = slices.Compact(n.strs)
		slices.Sort(n.nums)
		n.nums = slices.Compact(n.nums)
		slices.SortFunc(n.vers, func(a, b version) int {
			if c := a.compare(b); c != 0 {
				return c
			}
			return int(a.n) - int(b.n) // "17" before "17.0": the shortest spelling stays
		})
		n.vers = slices.CompactFunc(n.vers, func(a, b version) bool { return a.compare(b) == 0 })
		return nil
	}
	// eq, ne, lt, lte, gt, gte: one scalar of the attribute's type.
	return decodeScalar(n, v, path)
}

func decodeListElem(n *node, v *jsonValue, path string) error {
	want := jsonString
	if n.typ == TypeNumber {
		want = jsonNumber
	}
	if v.kind != want {
		return errorAt(path, fmt.Sprintf("is %s; %s on %s (a %s) needs %s", v.kind, n.op, n.attr, n.typ, valueHelp(n.typ, n.op)))
	}
	if n.typ == TypeStringSet || n.typ == TypeString {
		var s string
		if err := decodeString(v, path, &s); err != nil {
			return err
		}
		n.strs = append(n.strs, s)
		return nil
	}
	elem := node{typ: n.typ, attr: n.attr, op: n.op}
	if err := decodeScalar(&elem, v, path); err != nil {
		return err
	}
	switch n.typ {
	case TypeVersion:
		n.vers = append(n.vers, elem.ver)
	case TypeNumber:
		n.nums = append(n.nums, elem.num)
	}
	return nil
}

func decodeScalar(n *node, v *jsonValue, path string) error {
	switch n.typ {
	case TypeString:
		if v.kind != jsonString {
			return wrongValue(path, v, n)
		}
		return decodeString(v, path, &n.str)
	case TypeVersion:
		if v.kind != jsonString {
			return wrongValue(path, v, n)
		}
		n.ver = parseVersion(v.s)
		if !n.ver.ok {
			return errorAt(path, `is not a version; write dotted numbers as a string, such as "17.4.1" (at most 8 parts)`)
		}
	case TypeNumber:
		if v.kind != jsonNumber {
			return wrongValue(path, v, n)
		}
		f, err := strconv.ParseFloat(v.s, 64)
		if err != nil || math.IsInf(f, 0) {
			return errorAt(path, "is a number too large to compare; use a smaller one")
		}
		n.num = f + 0 // +0 turns -0 into 0, so both print and compare alike
	case TypeBool:
		if v.kind != jsonBool {
			return wrongValue(path, v, n)
		}
		if v.b {
			n.num = 1
		}
	case TypeTime:
		if v.kind != jsonString {
			return wrongValue(path, v, n)
		}
		t, err := time.Parse(time.RFC3339Nano, v.s)
		if err != nil {
			return errorAt(path, `is not a time; write RFC 3339 such as "2026-01-31T00:00:00Z", or use within/older_than for relative ages`)
		}
		n.at = t.UTC()
	default:
		return wrongValue(path, v, n)
	}
	return nil
}

func decodeString(v *jsonValue, path string, dst *string) error {
	if len(v.s) > maxValueLen {
		return errorAt(path, fmt.Sprintf("is %d bytes long; the limit is %d", len(v.s), maxValueLen))
	}
	*dst = v.s
	return nil
}

func wrongValue(path string, v *jsonValue, n *node) error {
	return errorAt(path, fmt.Sprintf("is %s; %s on %s (a %s) needs %s", v.kind, n.op, n.attr, n.typ, valueHelp(n.typ, n.op)))
}
