package rules

import (
	"math"
	"slices"
	"time"
)

// Facts holds one device's attribute values for evaluation, bound to the
// schema that made it. An attribute never set since the last Reset is
// unknown. Setters copy what they keep and reuse the Facts' own buffers, so
// one Facts reused across devices (Reset, set, Eval) allocates nothing in
// the steady state. A Facts is not safe for concurrent use.
//
// Setters panic if given a handle from another schema: that is a
// programming error, and storing into the wrong slot would silently
// misclassify devices.
type Facts struct {
	schema   *Schema
	known    []bool // by attribute index
	strs     []string
	versions []version
	nums     []float64 // numbers and bools (0/1)
	times    []time.Time
	sets     [][]string // sorted, without duplicates
}

// NewFacts returns an empty Facts for the schema: every attribute unknown.
func (s *Schema) NewFacts() *Facts {
	return &Facts{
		schema:   s,
		known:    make([]bool, len(s.names)),
		strs:     make([]string, s.count[TypeString]),
		versions: make([]version, s.count[TypeVersion]),
		nums:     make([]float64, s.count[TypeNumber]+s.count[TypeBool]),
		times:    make([]time.Time, s.count[TypeTime]),
		sets:     make([][]string, s.count[TypeStringSet]),
	}
}

// Schema returns the schema the Facts is bound to.
func (f *Facts) Schema() *Schema { return f.schema }

// Reset makes every attribute unknown again. It also drops the strings the
// Facts refers to, so a decrypted value (such as the app list) does not
// outlive the device it belonged to.
func (f *Facts) Reset() {
	clear(f.known)
	clear(f.strs)
	for i := range f.sets {
		clear(f.sets[i])
		f.sets[i] = f.sets[i][:0]
	}
}

func (f *Facts) check(a attr) {
	if a.schema != f.schema {
		panic("rules: attribute handle from another schema (or a zero handle) used with these Facts")
	}
}

// SetString sets a string attribute.
func (f *Facts) SetString(a StringAttr, v string) {
	f.check(a.attr)
	f.strs[a.sub] = v
	f.known[a.index] = true
}

// SetVersion sets a version attribute from its reported text. A value that
// is not dotted numbers is kept as reported-but-not-comparable: exists
// matches it, every comparison on it is Unknown.
func (f *Facts) SetVersion(a VersionAttr, v string) {
	f.check(a.attr)
	f.versions[a.sub] = parseVersion(v)
	f.known[a.index] = true
}

// SetNumber sets a number attribute. NaN leaves it unknown, since NaN
// compares with nothing.
func (f *Facts) SetNumber(a NumberAttr, v float64) {
	f.check(a.attr)
	if math.IsNaN(v) {
		f.known[a.index] = false
		return
	}
	f.nums[a.sub] = v
	f.known[a.index] = true
}

// SetBool sets a bool attribute.
func (f *Facts) SetBool(a BoolAttr, v bool) {
	f.check(a.attr)
	f.nums[a.sub] = 0 // bools share the number array, after the numbers
	if v {
		f.nums[a.sub] = 1
	}
	f.known[a.index] = true
}

// SetTime sets a time attribute. The zero time leaves it unknown: callers
// use it for "never happened", which is not an instant to compare with.
func (f *Facts) SetTime(a TimeAttr, v time.Time) {
	f.check(a.attr)
	if v.IsZero() {
		f.known[a.index] = false
		return
	}
	f.times[a.sub] = v
	f.known[a.index] = true
}

// SetStringSet sets a string set attribute to a copy of v (duplicates
// ignored). An empty v is a known, empty set.
func (f *Facts) SetStringSet(a StringSetAttr, v []string) {
	f.check(a.attr)
	set := append(f.sets[a.sub][:0], v...)
	if !slices.IsSorted(set) { // a store that keeps lists sorted skips the sort
		slices.Sort(set)
	}
	set = slices.Compact(set)
	clear(set[len(set):cap(set)]) // drop references Compact left behind
	f.sets[a.sub] = set
	f.known[a.index] = true
}

// Unset makes one attribute unknown again.
func (f *Facts) Unset(name string) {
	if i, ok := f.schema.index[name]; ok {
		f.known[i] = false
	}
}
