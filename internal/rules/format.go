package rules

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"
)

// MarshalJSON writes the rule in canonical form: keys in the order attr,
// op, value; lists sorted without duplicates; versions without leading
// zeros; times in UTC; durations as days, hours, minutes, seconds ("36h"
// becomes "1d12h"). Compiling the output against the same schema gives an
// equivalent rule with the same canonical form, so stored rules can be
// compared byte for byte.
func (r *Rule) MarshalJSON() ([]byte, error) { return r.root.canonicalJSON() }

// canonicalJSON uses json.Marshal's escaping ("<" as \u003c) because
// json.Marshal applies it to a Marshaler's output anyway; one form whichever
// way the rule is encoded.
func (n *node) canonicalJSON() ([]byte, error) { return json.Marshal(n.jsonTree()) }

// key is the canonical JSON as a string, for comparing subtrees.
func (n *node) key() string {
	b, err := n.canonicalJSON()
	if err != nil { // cannot happen: the tree holds only strings, finite numbers and bools
		return "\x00invalid"
	}
	return string(b)
}

type jsonCondition struct {
	Attr  string `json:"attr"`
	Op    string `json:"op"`
	Value any    `json:"value,omitempty"`
}

func (n *node) jsonTree() any {
	switch n.kind {
	case kindAll, kindAny:
		children := make([]any, len(n.children))
		for i, c := range n.children {
			children[i] = c.jsonTree()
		}
		if n.kind == kindAll {
			return struct {
				All []any `json:"all"`
			}{children}
		}
		return struct {
			Any []any `json:"any"`
		}{children}
	case kindNot:
		return struct {
			Not any `json:"not"`
		}{n.children[0].jsonTree()}
	}
	return jsonCondition{Attr: n.attr, Op: n.op.String(), Value: n.jsonValue()}
}

// jsonValue returns the condition's value as JSON-encodable data, or nil
// for exists and missing.
func (n *node) jsonValue() any {
	switch n.op {
	case opExists, opMissing:
		return nil
	case opWithin, opOlderThan:
		return formatDuration(n.dur)
	case opPrefix, opContains:
		return n.str
	case opIn, opNotIn, opContainsAny, opContainsAll:
		switch n.typ {
		case TypeNumber:
			return n.nums
		case TypeVersion:
			out := make([]string, len(n.vers))
			for i, v := range n.vers {
				out[i] = v.String()
			}
			return out
		}
		return n.strs
	}
	switch n.typ {
	case TypeVersion:
		return n.ver.String()
	case TypeNumber:
		return n.num
	case TypeBool:
		return n.num == 1
	case TypeTime:
		return n.at.Format(time.RFC3339Nano)
	}
	return n.str
}

// String renders the rule for people: "os.version ≥ 17.4 and ownership =
// corporate". Groups inside groups are parenthesised; strings that are not
// plain words are quoted.
func (r *Rule) String() string {
	var b strings.Builder
	r.root.write(&b, false)
	return b.String()
}

var opSymbols = [...]string{
	opEq: "=", opNe: "≠", opIn: "in", opNotIn: "not in", opLt: "<", opLte: "≤", opGt: ">", opGte: "≥",
	opPrefix: "starts with", opContains: "contains", opContainsAny: "contains any of",
	opContainsAll: "contains all of", opExists: "exists", opMissing: "is missing", opWithin: "within",
	opOlderThan: "older than",
}

func (n *node) write(b *strings.Builder, nested bool) {
	switch n.kind {
	case kindAll, kindAny:
		sep := " and "
		if n.kind == kindAny {
			sep = " or "
		}
		paren := nested && len(n.children) > 1
		if paren {
			b.WriteByte('(')
		}
		for i, c := range n.children {
			if i > 0 {
				b.WriteString(sep)
			}
			c.write(b, true)
		}
		if paren {
			b.WriteByte(')')
		}
	case kindNot:
		b.WriteString("not (")
		n.children[0].write(b, false)
		b.WriteByte(')')
	default:
		b.WriteString(n.attr)
		b.WriteByte(' ')
		b.WriteString(opSymbols[n.op])
		if v := n.jsonValue(); v != nil {
			b.WriteByte(' ')
			writeHuman(b, v)
		}
	}
}

func writeHuman(b *strings.Builder, v any) {
	switch v := v.(type) {
	case string:
		b.WriteString(quoteIfNeeded(v))
	case float64:
		b.WriteString(strconv.FormatFloat(v, 'g', -1, 64))
	case bool:
		b.WriteString(strconv.FormatBool(v))
	case []string:
		b.WriteByte('[')
		for i, s := range v {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(quoteIfNeeded(s))
		}
		b.WriteByte(']')
	case []float64:
		b.WriteByte('[')
		for i, f := range v {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(strconv.FormatFloat(f, 'g', -1, 64))
		}
		b.WriteByte(']')
	}
}

// quoteIfNeeded leaves plain tokens (letters, digits, . _ - : / @ +) bare
// and quotes anything else, so spaces, brackets and "and"/"or" inside a
// value cannot be misread as rule structure.
func quoteIfNeeded(s string) string {
	if s == "" || s == "and" || s == "or" || s == "not" {
		return strconv.Quote(s)
	}
	for _, r := range s {
		plain := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._-:/@+", r)
		if !plain {
			return strconv.Quote(s)
		}
	}
	return s
}
