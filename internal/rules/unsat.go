package rules

import (
	"fmt"
	"slices"
	"time"
)

// Unsatisfiability is proved only inside one all (with nested alls
// flattened) and only for these contradictions:
//   - a rule and its negation ({"not": same}), including exists vs missing;
//   - missing together with any other condition on the same attribute;
//   - two different eq values, or an eq/in value that every other
//     condition on the attribute rules out (range, ne, not_in, other lists);
//   - an empty range (gte 18 and lt 17; within 7d and older_than 30d).
// An any is unsatisfiable when all its alternatives are. Anything else is
// assumed satisfiable, so a refusal is always a real contradiction.
// Messages cite JSON paths and attribute names, never values.

// literal is one condition an all requires to be True, with where it came
// from. A negated condition is stored already inverted (not lt → gte),
// which is exact in three-valued logic: both are Unknown when the fact is.
type literal struct {
	n    *node
	path string
}

func checkSatisfiable(n *node, path string) error {
	if p, reason := neverTrue(n, path); reason != "" {
		return unsatisfiableAt(p, reason)
	}
	return nil
}

// neverTrue returns the path and reason when n can never be True, and two
// empty strings otherwise.
func neverTrue(n *node, path string) (string, string) {
	switch n.kind {
	case kindAny:
		for i, c := range n.children {
			if _, reason := neverTrue(c, childPath(path, "any", i)); reason == "" {
				return "", ""
			}
		}
		return path, "none of the alternatives in this any can match; each is contradictory"
	case kindAll:
		for i, c := range n.children {
			if p, reason := neverTrue(c, childPath(path, "all", i)); reason != "" {
				return p, reason
			}
		}
		var flat []*node
		var paths []string
		flatten(n, path, &flat, &paths)
		if reason := contradiction(flat, paths); reason != "" {
			return path, reason
		}
	}
	return "", ""
}

func childPath(path, group string, i int) string {
	return fmt.Sprintf("%s[%d]", joinPath(path, group), i)
}

// flatten lists the members of nested alls: all(a, all(b, c)) is all(a, b, c).
func flatten(n *node, path string, out *[]*node, paths *[]string) {
	for i, c := range n.children {
		p := childPath(path, "all", i)
		if c.kind == kindAll {
			flatten(c, p, out, paths)
			continue
		}
		*out = append(*out, c)
		*paths = append(*paths, p)
	}
}

func contradiction(members []*node, paths []string) string {
	// A member and its negation.
	seen := make(map[string]int) // signed key → index
	for i, m := range members {
		key, positive := signedKey(m)
		if j, ok := seen[signed(key, !positive)]; ok {
			return fmt.Sprintf("%s and %s contradict each other: one is the negation of the other", paths[j], paths[i])
		}
		seen[signed(key, positive)] = i
	}
	// Conditions grouped by attribute.
	byAttr := make(map[string][]literal)
	var order []string
	for i, m := range members {
		lit, ok := asLiteral(m, paths[i])
		if !ok {
			continue
		}
		if _, ok := byAttr[lit.n.attr]; !ok {
			order = append(order, lit.n.attr)
		}
		byAttr[lit.n.attr] = append(byAttr[lit.n.attr], lit)
	}
	for _, attr := range order {
		if reason := attributeContradiction(attr, byAttr[attr]); reason != "" {
			return reason
		}
	}
	return ""
}

func signed(key string, positive bool) string {
	if positive {
		return "+" + key
	}
	return "-" + key
}

// signedKey is a node's canonical form with negations peeled off:
// not(x) is (x, negative); "missing" is (the same exists, negative).
func signedKey(n *node) (string, bool) {
	switch {
	case n.kind == kindNot:
		key, positive := signedKey(n.children[0])
		return key, !positive
	case n.kind == kindCond && n.op == opMissing:
		c := *n
		c.op = opExists
		return c.key(), false
	}
	return n.key(), true
}

var negations = map[op]op{
	opEq: opNe, opNe: opEq, opIn: opNotIn, opNotIn: opIn, opLt: opGte, opGte: opLt, opLte: opGt,
	opGt: opLte, opWithin: opOlderThan, opOlderThan: opWithin, opExists: opMissing, opMissing: opExists,
}

// asLiteral turns a condition, or a not of a condition (negated), into a literal.
func asLiteral(n *node, path string) (literal, bool) {
	negate := false
	for n.kind == kindNot {
		negate = !negate
		n = n.children[0]
	}
	if n.kind != kindCond {
		return literal{}, false
	}
	if negate {
		inverse, ok := negations[n.op]
		if !ok {
			return literal{}, false // not contains: no positive form to reason with
		}
		c := *n
		c.op = inverse
		n = &c
	}
	return literal{n: n, path: path}, true
}

// scalar is one value of any type, compared by cmpScalar.
type scalar struct {
	s string
	f float64
	v version
	t time.Time
	d time.Duration
}

// age reports whether a literal constrains how long ago a time was
// (within, older_than) rather than the time itself.
func age(o op) bool { return o == opWithin || o == opOlderThan }

func cmpScalar(typ Type, isAge bool, a, b scalar) int {
	switch {
	case isAge:
		return cmpOrdered(a.d, b.d)
	case typ == TypeVersion:
		return a.v.compare(b.v)
	case typ == TypeNumber || typ == TypeBool:
		return cmpOrdered(a.f, b.f)
	case typ == TypeTime:
		return a.t.Compare(b.t)
	}
	return cmpOrdered(a.s, b.s)
}

func cmpOrdered[T int64 | float64 | string | time.Duration](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// values returns a literal's value(s) as scalars.
func values(n *node) []scalar {
	switch {
	case n.op == opIn || n.op == opNotIn:
		var out []scalar
		for _, s := range n.strs {
			out = append(out, scalar{s: s})
		}
		for _, f := range n.nums {
			out = append(out, scalar{f: f})
		}
		for _, v := range n.vers {
			out = append(out, scalar{v: v})
		}
		return out
	}
	return []scalar{single(n)}
}

// admits reports whether x can make the literal True; operators the
// checker does not model admit everything. It allocates nothing and
// searches lists by bisection: Compile calls it for every pair of a
// candidate value and a literal, up to 1,000 × 256 times.
func admits(n *node, x scalar) bool {
	isAge := age(n.op)
	switch n.op {
	case opIn, opNotIn:
		return listHas(n, x) == (n.op == opIn)
	case opEq, opNe, opLt, opLte, opGt, opGte, opWithin, opOlderThan:
	default:
		return true
	}
	c := cmpScalar(n.typ, isAge, x, single(n))
	switch n.op {
	case opEq:
		return c == 0
	case opNe:
		return c != 0
	case opLt:
		return c < 0
	case opLte, opWithin:
		return c <= 0
	case opGt, opOlderThan:
		return c > 0
	}
	return c >= 0 // opGte
}

// single is the value of a one-value literal.
func single(n *node) scalar {
	if age(n.op) {
		return scalar{d: n.dur}
	}
	return scalar{s: n.str, f: n.num, v: n.ver, t: n.at}
}

// listHas reports whether an in/not_in list holds x (lists are sorted).
func listHas(n *node, x scalar) bool {
	var found bool
	switch n.typ {
	case TypeNumber:
		_, found = slices.BinarySearch(n.nums, x.f)
	case TypeVersion:
		_, found = slices.BinarySearchFunc(n.vers, x.v, version.compare)
	default:
		_, found = slices.BinarySearch(n.strs, x.s)
	}
	return found
}

func attributeContradiction(attr string, lits []literal) string {
	for _, l := range lits {
		if l.n.op != opMissing {
			continue
		}
		for _, o := range lits {
			if o.n.op != opMissing {
				return fmt.Sprintf("%s and %s contradict each other: %s cannot be missing and also match a condition", l.path, o.path, attr)
			}
		}
	}
	for isAge := range 2 {
		if reason := rangeContradiction(attr, lits, isAge == 1); reason != "" {
			return reason
		}
	}
	// Candidate values from the first eq or in, tested against the rest.
	for i, l := range lits {
		if l.n.op != opEq && l.n.op != opIn {
			continue
		}
		var survivors int
		var firstBlocker string
		for _, x := range values(l.n) {
			blocked := false
			for j, o := range lits {
				if j != i && !age(o.n.op) && !admits(o.n, x) {
					blocked = true
					if firstBlocker == "" {
						firstBlocker = o.path
					}
					break
				}
			}
			if !blocked {
				survivors++
			}
		}
		if survivors > 0 {
			return ""
		}
		if l.n.op == opEq {
			return fmt.Sprintf("%s and %s contradict each other: no %s satisfies both", l.path, firstBlocker, attr)
		}
		return fmt.Sprintf("no value listed at %s satisfies the other conditions on %s (see %s)", l.path, attr, firstBlocker)
	}
	return ""
}

// rangeContradiction finds a lower and an upper bound that leave no value,
// or that pin a single value another condition excludes.
func rangeContradiction(attr string, lits []literal, isAge bool) string {
	for _, lo := range lits {
		loIncl := lo.n.op == opGte
		if age(lo.n.op) != isAge || (lo.n.op != opGt && lo.n.op != opGte && lo.n.op != opOlderThan) {
			continue
		}
		for _, hi := range lits {
			hiIncl := hi.n.op == opLte || hi.n.op == opWithin
			if age(hi.n.op) != isAge || (hi.n.op != opLt && hi.n.op != opLte && hi.n.op != opWithin) {
				continue
			}
			l, h := single(lo.n), single(hi.n)
			c := cmpScalar(lo.n.typ, isAge, l, h)
			if c > 0 || c == 0 && !(loIncl && hiIncl) {
				return fmt.Sprintf("%s and %s contradict each other: together they leave no %s", lo.path, hi.path, attr)
			}
			if c == 0 && !isAge { // gte x and lte x: only x, unless something excludes it
				for _, o := range lits {
					if !age(o.n.op) && !admits(o.n, l) {
						return fmt.Sprintf("%s and %s allow only one %s, which %s excludes", lo.path, hi.path, attr, o.path)
					}
				}
			}
		}
	}
	return ""
}
