package rules

import (
	"strings"
	"time"
)

type op uint8

const (
	opEq op = iota + 1
	opNe
	opIn
	opNotIn
	opLt
	opLte
	opGt
	opGte
	opPrefix
	opContains
	opContainsAny
	opContainsAll
	opExists
	opMissing
	opWithin
	opOlderThan
)

var opNames = [...]string{
	opEq: "eq", opNe: "ne", opIn: "in", opNotIn: "not_in", opLt: "lt", opLte: "lte", opGt: "gt",
	opGte: "gte", opPrefix: "prefix", opContains: "contains", opContainsAny: "contains_any",
	opContainsAll: "contains_all", opExists: "exists", opMissing: "missing", opWithin: "within",
	opOlderThan: "older_than",
}

func (o op) String() string { return opNames[o] }

func parseOp(s string) (op, bool) {
	for o := opEq; o <= opOlderThan; o++ {
		if opNames[o] == s {
			return o, true
		}
	}
	return 0, false
}

// opsByType lists the operators each type accepts, in the order error
// messages suggest them.
var opsByType = [...][]op{
	TypeString:    {opEq, opNe, opIn, opNotIn, opPrefix, opExists, opMissing},
	TypeVersion:   {opEq, opNe, opIn, opNotIn, opLt, opLte, opGt, opGte, opExists, opMissing},
	TypeNumber:    {opEq, opNe, opIn, opNotIn, opLt, opLte, opGt, opGte, opExists, opMissing},
	TypeBool:      {opEq, opNe, opExists, opMissing},
	TypeTime:      {opLt, opLte, opGt, opGte, opWithin, opOlderThan, opExists, opMissing},
	TypeStringSet: {opContains, opContainsAny, opContainsAll, opExists, opMissing},
}

func opNamesFor(t Type) string {
	names := make([]string, 0, len(opsByType[t]))
	for _, o := range opsByType[t] {
		names = append(names, o.String())
	}
	return strings.Join(names, ", ")
}

type nodeKind uint8

const (
	kindAll nodeKind = iota + 1
	kindAny
	kindNot
	kindCond
)

// node is one compiled rule node. Conditions carry their attribute's slot
// and the value already decoded into the attribute's type, so Eval only
// compares.
type node struct {
	kind     nodeKind
	children []*node // all, any: one or more; not: exactly one

	// Conditions only.
	attr  string
	typ   Type
	index int32 // attribute index: Facts.known
	sub   int32 // position in the Facts array of typ
	op    op
	str   string        // string eq/ne/prefix, set contains
	strs  []string      // string in/not_in, set contains_any/all: sorted, unique
	num   float64       // number eq/ne/lt…; bool eq/ne as 0 or 1
	nums  []float64     // number in/not_in: sorted, unique
	ver   version       // version eq/ne/lt…
	vers  []version     // version in/not_in: sorted, unique
	at    time.Time     // time lt…gte
	dur   time.Duration // within, older_than
}

// Rule is a compiled rule, bound to the schema it was compiled against. It
// is immutable and safe for concurrent use.
type Rule struct {
	root   *node
	schema *Schema
	attrs  []string
}

// Schema returns the schema the rule was compiled against.
func (r *Rule) Schema() *Schema { return r.schema }

// Attributes returns the sorted names of the attributes the rule reads: a
// device needs re-evaluating only when one of them changes.
func (r *Rule) Attributes() []string { return append([]string(nil), r.attrs...) }
