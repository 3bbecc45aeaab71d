package rules

import (
	"errors"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// The satisfiability check must never refuse a rule that can match. These
// tests search for a counterexample: for a refused rule, they build devices
// from the rule's own constants and their neighbours (where contradictions
// live) and require that none makes the rule True.

// candidates returns, per attribute index, setters that put one candidate
// value into Facts (a nil setter leaves the attribute unknown).
func candidates(s *Schema, root *node, now time.Time) map[int32][]func(*Facts) {
	out := make(map[int32][]func(*Facts))
	var walk func(n *node)
	walk = func(n *node) {
		for _, c := range n.children {
			walk(c)
		}
		if n.kind != kindCond {
			return
		}
		a := attr{schema: s, index: n.index, sub: n.sub}
		add := func(set func(*Facts)) { out[n.index] = append(out[n.index], set) }
		if len(out[n.index]) == 0 {
			add(nil)
		}
		switch n.typ {
		case TypeString:
			for _, v := range append([]string{n.str, n.str + "x", ""}, n.strs...) {
				add(func(f *Facts) { f.SetString(StringAttr{a}, v) })
			}
		case TypeVersion:
			for _, v := range append([]version{n.ver}, n.vers...) {
				if !v.ok {
					continue
				}
				for _, w := range versionNeighbours(v) {
					text := w.String()
					add(func(f *Facts) { f.SetVersion(VersionAttr{a}, text) })
				}
			}
		case TypeNumber, TypeBool:
			for _, v := range append([]float64{n.num, 0, 1}, n.nums...) {
				for _, w := range []float64{v, math.Nextafter(v, math.Inf(-1)), math.Nextafter(v, math.Inf(1)), v - 1, v + 1} {
					if n.typ == TypeBool {
						add(func(f *Facts) { f.SetBool(BoolAttr{a}, w == 1) })
					} else {
						add(func(f *Facts) { f.SetNumber(NumberAttr{a}, w) })
					}
				}
			}
		case TypeTime:
			base := n.at
			if age(n.op) {
				base = now.Add(-n.dur)
			}
			if !base.IsZero() {
				for _, d := range []time.Duration{-time.Second, -1, 0, 1, time.Second} {
					add(func(f *Facts) { f.SetTime(TimeAttr{a}, base.Add(d)) })
				}
			}
		case TypeStringSet:
			for _, v := range [][]string{{}, {n.str}, n.strs, n.strs[:min(1, len(n.strs))], append([]string{n.str}, n.strs...)} {
				add(func(f *Facts) { f.SetStringSet(StringSetAttr{a}, v) })
			}
		}
	}
	walk(root)
	return out
}

func versionNeighbours(v version) []version {
	out := []version{v}
	last := int(v.n) - 1
	up := v
	up.seg[last]++
	out = append(out, up)
	if v.seg[last] > 0 {
		down := v
		down.seg[last]--
		out = append(out, down)
	}
	if v.n < maxVersionSegments {
		longer := v
		longer.seg[v.n] = 1
		longer.n++
		smallestStep := v // the next version up: 17 → 17.0.0.0.0.0.0.1
		smallestStep.seg[maxVersionSegments-1] = 1
		smallestStep.n = maxVersionSegments
		out = append(out, longer, smallestStep)
	}
	return out
}

// findMatch tries up to budget devices and returns true if one makes r True.
func findMatch(r *Rule, seed uint64, budget int) bool {
	cands := candidates(r.schema, r.root, testNow)
	attrs := make([]int32, 0, len(cands))
	for i := range cands {
		attrs = append(attrs, i)
	}
	slices.Sort(attrs)
	f := r.schema.NewFacts()
	rng := rand.New(rand.NewPCG(seed, 7))
	total := 1
	for _, i := range attrs {
		total = min(total*len(cands[i]), budget+1)
	}
	for k := range min(total, budget) {
		f.Reset()
		rest := k
		for _, i := range attrs {
			choice := rest % len(cands[i]) // exhaustive while the product fits the budget
			rest /= len(cands[i])
			if total > budget {
				choice = rng.IntN(len(cands[i]))
			}
			if set := cands[i][choice]; set != nil {
				set(f)
			}
		}
		if r.Eval(f, testNow) == True {
			return true
		}
	}
	return false
}

func checkRefusalSound(t *testing.T, s *Schema, raw []byte) {
	if _, err := Compile(raw, s); !errors.Is(err, ErrUnsatisfiable) {
		return
	}
	r, err := compileUnchecked(raw, s)
	if err != nil {
		t.Fatalf("refused as unsatisfiable but does not compile unchecked: %v", err)
	}
	h := fnv.New64a()
	h.Write(raw)
	if findMatch(r, h.Sum64(), 4000) {
		t.Fatalf("refused as unsatisfiable, yet a device matches: %s", raw)
	}
}

func TestUnsatisfiableRefusalsAreSound(t *testing.T) {
	s := testSchema(t)
	for _, tc := range unsatisfiableCases {
		checkRefusalSound(t, s, []byte(tc.rule))
	}
	// The search itself must find matches, or the test proves nothing.
	for _, rule := range satisfiableLookAlikes {
		r := mustCompile(t, s, rule)
		h := fnv.New64a()
		h.Write([]byte(rule))
		if !findMatch(r, h.Sum64(), 4000) {
			t.Errorf("no device found for satisfiable %s", rule)
		}
	}
}

func FuzzUnsatisfiableRefusalsAreSound(f *testing.F) {
	for _, tc := range unsatisfiableCases {
		f.Add([]byte(tc.rule))
	}
	for _, rule := range satisfiableLookAlikes {
		f.Add([]byte(rule))
	}
	s := testSchema(f)
	f.Fuzz(func(t *testing.T, raw []byte) { checkRefusalSound(t, s, raw) })
}
