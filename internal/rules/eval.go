package rules

import (
	"slices"
	"strings"
	"time"
)

// Result is the outcome of evaluating a rule on one device, in three-valued
// (Kleene) logic. The zero Result is Unknown, so a Result nobody set never
// reads as a match.
type Result uint8

const (
	// Unknown: the device has not reported what the rule needs (or reported
	// a version that is not dotted numbers), and the known facts do not
	// decide the rule either way.
	Unknown Result = iota
	// False: the rule does not hold.
	False
	// True: the rule holds.
	True
)

func (r Result) String() string {
	switch r {
	case True:
		return "true"
	case False:
		return "false"
	}
	return "unknown"
}

// Matches reports whether r is True: the test for group membership and
// compliance, where Unknown must not count as a match.
func (r Result) Matches() bool { return r == True }

// Not is the three-valued negation: Unknown stays Unknown.
func (r Result) Not() Result {
	switch r {
	case True:
		return False
	case False:
		return True
	}
	return Unknown
}

func resultOf(b bool) Result {
	if b {
		return True
	}
	return False
}

// Eval evaluates the rule on one device's facts at the instant now (used by
// within and older_than). It allocates nothing and is safe to call from
// many goroutines on the same Rule with different Facts.
//
// It panics if f was made by a different schema than the rule's: the slots
// would not line up, and a wrong answer would silently misplace devices.
func (r *Rule) Eval(f *Facts, now time.Time) Result {
	if f.schema != r.schema {
		panic("rules: Eval with Facts from a different schema than the rule's")
	}
	return r.root.eval(f, now)
}

func (n *node) eval(f *Facts, now time.Time) Result {
	switch n.kind {
	case kindAll:
		res := True
		for _, c := range n.children {
			switch c.eval(f, now) {
			case False:
				return False
			case Unknown:
				res = Unknown // keep looking: a later False decides the all
			}
		}
		return res
	case kindAny:
		res := False
		for _, c := range n.children {
			switch c.eval(f, now) {
			case True:
				return True
			case Unknown:
				res = Unknown
			}
		}
		return res
	case kindNot:
		return n.children[0].eval(f, now).Not()
	}
	return n.evalCondition(f, now)
}

func (n *node) evalCondition(f *Facts, now time.Time) Result {
	known := f.known[n.index]
	switch n.op {
	case opExists:
		return resultOf(known)
	case opMissing:
		return resultOf(!known)
	}
	if !known {
		return Unknown
	}
	switch n.typ {
	case TypeString:
		return n.evalString(f.strs[n.sub])
	case TypeVersion:
		return n.evalVersion(f.versions[n.sub])
	case TypeNumber, TypeBool:
		return n.evalNumber(f.nums[n.sub])
	case TypeTime:
		return n.evalTime(f.times[n.sub], now)
	case TypeStringSet:
		return n.evalSet(f.sets[n.sub])
	}
	return Unknown
}

func (n *node) evalString(s string) Result {
	switch n.op {
	case opEq:
		return resultOf(s == n.str)
	case opNe:
		return resultOf(s != n.str)
	case opIn:
		_, found := slices.BinarySearch(n.strs, s)
		return resultOf(found)
	case opNotIn:
		_, found := slices.BinarySearch(n.strs, s)
		return resultOf(!found)
	case opPrefix:
		return resultOf(strings.HasPrefix(s, n.str))
	}
	return Unknown
}

func (n *node) evalVersion(v version) Result {
	if !v.ok {
		return Unknown // reported, but not dotted numbers: compares with nothing
	}
	switch n.op {
	case opIn, opNotIn:
		_, found := slices.BinarySearchFunc(n.vers, v, version.compare)
		return resultOf(found == (n.op == opIn))
	}
	return ordered(n.op, v.compare(n.ver))
}

func (n *node) evalNumber(x float64) Result {
	switch n.op {
	case opIn, opNotIn:
		_, found := slices.BinarySearch(n.nums, x)
		return resultOf(found == (n.op == opIn))
	}
	c := 0
	if x < n.num {
		c = -1
	} else if x > n.num {
		c = 1
	}
	return ordered(n.op, c)
}

func (n *node) evalTime(t, now time.Time) Result {
	switch n.op {
	case opWithin:
		return resultOf(now.Sub(t) <= n.dur) // a time in the future is within any age
	case opOlderThan:
		return resultOf(now.Sub(t) > n.dur)
	}
	return ordered(n.op, t.Compare(n.at))
}

// ordered applies a comparison operator to c, the sign of fact - value.
func ordered(o op, c int) Result {
	switch o {
	case opEq:
		return resultOf(c == 0)
	case opNe:
		return resultOf(c != 0)
	case opLt:
		return resultOf(c < 0)
	case opLte:
		return resultOf(c <= 0)
	case opGt:
		return resultOf(c > 0)
	case opGte:
		return resultOf(c >= 0)
	}
	return Unknown
}

func (n *node) evalSet(set []string) Result {
	switch n.op {
	case opContains:
		_, found := slices.BinarySearch(set, n.str)
		return resultOf(found)
	case opContainsAny:
		for _, want := range n.strs {
			if _, found := slices.BinarySearch(set, want); found {
				return True
			}
		}
		return False
	case opContainsAll:
		for _, want := range n.strs {
			if _, found := slices.BinarySearch(set, want); !found {
				return False
			}
		}
		return True
	}
	return Unknown
}
