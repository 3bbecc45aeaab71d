package rules

import (
	"fmt"
	"slices"
	"strconv"
	"unicode/utf8"
)

// Limits on a rule. They keep a hostile or mistaken rule from costing more
// than a few microseconds per device.
const (
	maxRuleBytes = 64 << 10 // whole rule JSON
	maxNodes     = 256      // all, any, not and condition objects together
	maxDepth     = 16       // nested all/any/not levels
	maxListLen   = 1000     // values in one in/not_in/contains_any/contains_all list
	maxValueLen  = 1024     // bytes in one string value
)

// Compile parses a rule written in the JSON rule language (see the package
// documentation) and resolves it against s.
//
// It returns an *Error wrapping ErrInvalid when raw is not exactly one JSON
// object of the language, uses an attribute s does not define, an operator
// the attribute's type does not support or a value of the wrong type, holds
// invalid UTF-8, a bad version, time or duration, an empty list, all or any, a duplicate or
// unknown key, or exceeds the limits (64 KiB, 256 nodes, 16 levels, 1,000
// values per list, 1,024 bytes per string). It returns an *Error wrapping
// ErrUnsatisfiable when it can prove the rule never evaluates to True; the
// proof is best-effort (see the package documentation), so a rule that
// compiles may still match no device. A nil schema is a programming error
// and gets a plain error.
func Compile(raw []byte, s *Schema) (*Rule, error) {
	r, err := compileUnchecked(raw, s)
	if err != nil {
		return nil, err
	}
	if err := checkSatisfiable(r.root, ""); err != nil {
		return nil, err
	}
	return r, nil
}

// compileUnchecked is Compile without the satisfiability check.
func compileUnchecked(raw []byte, s *Schema) (*Rule, error) {
	if s == nil {
		return nil, fmt.Errorf("rules: Compile needs a schema")
	}
	if len(raw) > maxRuleBytes {
		return nil, errorAt("", fmt.Sprintf("the rule is %d bytes; the limit is %d, split it into several groups", len(raw), maxRuleBytes))
	}
	if !utf8.Valid(raw) { // the JSON decoder would silently substitute U+FFFD
		return nil, errorAt("", "is not valid UTF-8; save the rule as UTF-8 text")
	}
	doc, err := parseJSON(raw)
	if err != nil {
		return nil, err
	}
	c := compiler{schema: s}
	root, err := c.node(doc, "", 1)
	if err != nil {
		return nil, err
	}
	// The canonical form can be longer than the input (escaping, number
	// spelling); bounding it too guarantees a stored canonical rule compiles.
	if canonical, err := root.canonicalJSON(); err != nil || len(canonical) > maxRuleBytes {
		return nil, errorAt("", fmt.Sprintf("the rule's canonical form exceeds %d bytes; split it into several groups", maxRuleBytes))
	}
	attrs := make([]string, 0, len(c.attrs))
	for name := range c.attrs {
		attrs = append(attrs, name)
	}
	slices.Sort(attrs)
	return &Rule{root: root, schema: s, attrs: attrs}, nil
}

type compiler struct {
	schema *Schema
	nodes  int
	attrs  map[string]struct{}
}

const shapeHelp = `write {"all":[…]}, {"any":[…]}, {"not":{…}} or a condition {"attr":…,"op":…,"value":…}`

func (c *compiler) node(v *jsonValue, path string, depth int) (*node, error) {
	if v.kind != jsonObject {
		return nil, errorAt(path, fmt.Sprintf("is %s; %s", v.kind, shapeHelp))
	}
	if len(v.obj) == 0 {
		return nil, errorAt(path, "is an empty object; "+shapeHelp)
	}
	if depth > maxDepth {
		return nil, errorAt(path, fmt.Sprintf("nested deeper than %d levels; flatten the rule", maxDepth))
	}
	if c.nodes++; c.nodes > maxNodes {
		return nil, errorAt(path, fmt.Sprintf("the rule has more than %d conditions and groups; split it or use in lists", maxNodes))
	}
	first := v.obj[0].key
	switch first {
	case "all", "any", "not":
		if len(v.obj) > 1 {
			return nil, errorAt(joinPath(path, v.obj[1].key), fmt.Sprintf("unexpected key next to %q; an %s object has no other keys", first, first))
		}
		if first == "not" {
			child, err := c.node(v.obj[0].val, joinPath(path, "not"), depth+1)
			if err != nil {
				return nil, err
			}
			return &node{kind: kindNot, children: []*node{child}}, nil
		}
		return c.group(v.obj[0].val, joinPath(path, first), first, depth)
	}
	return c.condition(v, path)
}

func (c *compiler) group(v *jsonValue, path, name string, depth int) (*node, error) {
	if v.kind != jsonArray {
		return nil, errorAt(path, fmt.Sprintf("is %s; %q takes a list of rules", v.kind, name))
	}
	if len(v.arr) == 0 {
		return nil, errorAt(path, fmt.Sprintf("is empty; give %q at least one rule, or remove it", name))
	}
	n := &node{kind: kindAll, children: make([]*node, 0, len(v.arr))}
	if name == "any" {
		n.kind = kindAny
	}
	for i, elem := range v.arr {
		child, err := c.node(elem, path+"["+strconv.Itoa(i)+"]", depth+1)
		if err != nil {
			return nil, err
		}
		n.children = append(n.children, child)
	}
	return n, nil
}

func (c *compiler) condition(v *jsonValue, path string) (*node, error) {
	for _, f := range v.obj {
		if f.key != "attr" && f.key != "op" && f.key != "value" {
			return nil, errorAt(joinPath(path, f.key), `unknown key; a condition has "attr", "op" and "value" (or use "all", "any", "not")`)
		}
	}
	attrVal, opVal, value := v.field("attr"), v.field("op"), v.field("value")
	if attrVal == nil || attrVal.kind != jsonString {
		return nil, errorAt(joinPath(path, "attr"), "needs the attribute name as a string, such as \"os.version\"")
	}
	idx, ok := c.schema.index[attrVal.s]
	if !ok {
		return nil, errorAt(joinPath(path, "attr"), unknownAttributeMessage(c.schema, attrVal.s))
	}
	typ := c.schema.types[idx]
	n := &node{kind: kindCond, attr: attrVal.s, typ: typ, index: idx, sub: c.schema.sub[idx]}
	if opVal == nil || opVal.kind != jsonString {
		return nil, errorAt(joinPath(path, "op"), fmt.Sprintf("needs an operator as a string; for %s (a %s) use one of %s", n.attr, typ, opNamesFor(typ)))
	}
	o, ok := parseOp(opVal.s)
	if !ok {
		return nil, errorAt(joinPath(path, "op"), fmt.Sprintf("unknown operator; for %s (a %s) use one of %s", n.attr, typ, opNamesFor(typ)))
	}
	if !slices.Contains(opsByType[typ], o) {
		return nil, errorAt(joinPath(path, "op"), fmt.Sprintf("%s does not apply to %s (a %s); use one of %s", o, n.attr, typ, opNamesFor(typ)))
	}
	n.op = o
	valuePath := joinPath(path, "value")
	if o == opExists || o == opMissing {
		if value != nil {
			return nil, errorAt(valuePath, fmt.Sprintf("%s takes no value; remove it", o))
		}
	} else {
		if value == nil {
			return nil, errorAt(valuePath, fmt.Sprintf("is missing; %s needs %s", o, valueHelp(typ, o)))
		}
		if err := decodeValue(n, value, valuePath); err != nil {
			return nil, err
		}
	}
	if c.attrs == nil {
		c.attrs = make(map[string]struct{})
	}
	c.attrs[n.attr] = struct{}{}
	return n, nil
}

// unknownAttributeMessage suggests the closest name, if one is close: a
// schema name, never the admin's text (which could be anything).
func unknownAttributeMessage(s *Schema, name string) string {
	best, bestDist := "", 4
	if len(name) <= 128 {
		for _, cand := range s.names {
			if d := editDistance(name, cand); d < bestDist {
				best, bestDist = cand, d
			}
		}
	}
	if best != "" {
		return fmt.Sprintf("unknown attribute; did you mean %q?", best)
	}
	return "unknown attribute; use a name from the device schema"
}

// editDistance is the Levenshtein distance, for short names only.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
