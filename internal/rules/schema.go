package rules

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Type is the type of a device attribute. It decides which operators a
// condition on the attribute may use and how its value is written.
type Type uint8

const (
	// TypeString is text compared exactly (case-sensitive).
	TypeString Type = iota + 1
	// TypeVersion is a dotted numeric version such as "17.4.1", compared
	// segment by segment; missing segments count as 0.
	TypeVersion
	// TypeNumber is a float64.
	TypeNumber
	// TypeBool is true or false.
	TypeBool
	// TypeTime is an instant, written in rules as RFC 3339.
	TypeTime
	// TypeStringSet is an unordered set of strings, such as installed app IDs.
	TypeStringSet
)

var typeNames = [...]string{
	TypeString: "string", TypeVersion: "version", TypeNumber: "number",
	TypeBool: "bool", TypeTime: "time", TypeStringSet: "string set",
}

func (t Type) String() string {
	if t.valid() {
		return typeNames[t]
	}
	return fmt.Sprintf("Type(%d)", uint8(t))
}

func (t Type) valid() bool { return t >= TypeString && t <= TypeStringSet }

// maxAttributes bounds a schema so slot indexes stay small and a Facts stays cheap.
const maxAttributes = 4096

// ErrUnknownAttribute is returned by the attribute lookups for a name the
// schema does not define.
var ErrUnknownAttribute = errors.New("rules: unknown attribute")

// Schema maps attribute names to types. Each attribute owns a slot: a
// position in the per-type arrays of a Facts, so rules resolve names once at
// compile time and evaluation does no map lookups. A Schema is immutable
// and safe for concurrent use.
type Schema struct {
	names []string // sorted
	types []Type   // by attribute index
	sub   []int32  // by attribute index: position in the Facts array of its type
	count [TypeStringSet + 1]int32
	index map[string]int32
}

// NewSchema builds a schema from attribute name → type. It returns an error
// when the map is empty or too large, a name is empty, longer than 128
// bytes or contains whitespace, or a type is not one of the Type constants.
func NewSchema(attrs map[string]Type) (*Schema, error) {
	if len(attrs) == 0 {
		return nil, errors.New("rules: a schema needs at least one attribute")
	}
	if len(attrs) > maxAttributes {
		return nil, fmt.Errorf("rules: a schema has at most %d attributes, got %d", maxAttributes, len(attrs))
	}
	s := &Schema{index: make(map[string]int32, len(attrs))}
	for name := range attrs {
		s.names = append(s.names, name)
	}
	slices.Sort(s.names) // deterministic slots, whatever the map order
	for i, name := range s.names {
		t := attrs[name]
		if name == "" || len(name) > 128 || strings.ContainsAny(name, " \t\r\n") {
			return nil, fmt.Errorf("rules: attribute name %q must be 1–128 bytes without whitespace", name)
		}
		if !t.valid() {
			return nil, fmt.Errorf("rules: attribute %q has invalid type %d; use one of the Type constants", name, t)
		}
		s.types = append(s.types, t)
		s.sub = append(s.sub, s.count[t])
		s.count[t]++
		s.index[name] = int32(i)
	}
	for i, t := range s.types {
		if t == TypeBool { // bools live after the numbers in Facts.nums
			s.sub[i] += s.count[TypeNumber]
		}
	}
	return s, nil
}

// Names returns the attribute names in sorted order.
func (s *Schema) Names() []string { return slices.Clone(s.names) }

// TypeOf returns the type of the named attribute, and false when the schema
// does not define it.
func (s *Schema) TypeOf(name string) (Type, bool) {
	i, ok := s.index[name]
	if !ok {
		return 0, false
	}
	return s.types[i], true
}

// attr is the common part of the typed attribute handles.
type attr struct {
	schema *Schema
	index  int32 // attribute index (known flags)
	sub    int32 // position in the Facts array of the attribute's type
}

// Handles: one type per attribute type, so a setter can never store a
// value of the wrong type. Get them once (at startup) and reuse them.
type (
	StringAttr    struct{ attr }
	VersionAttr   struct{ attr }
	NumberAttr    struct{ attr }
	BoolAttr      struct{ attr }
	TimeAttr      struct{ attr }
	StringSetAttr struct{ attr }
)

func (s *Schema) lookup(name string, want Type) (attr, error) {
	i, ok := s.index[name]
	if !ok {
		return attr{}, fmt.Errorf("%w %q", ErrUnknownAttribute, name)
	}
	if s.types[i] != want {
		return attr{}, fmt.Errorf("rules: attribute %q is a %s, not a %s", name, s.types[i], want)
	}
	return attr{schema: s, index: i, sub: s.sub[i]}, nil
}

// StringAttr returns the handle of a string attribute. It returns an error
// wrapping ErrUnknownAttribute for an unknown name, and an error when the
// attribute has another type. The other XxxAttr lookups behave the same.
func (s *Schema) StringAttr(name string) (StringAttr, error) {
	a, err := s.lookup(name, TypeString)
	return StringAttr{a}, err
}

// VersionAttr returns the handle of a version attribute (see StringAttr).
func (s *Schema) VersionAttr(name string) (VersionAttr, error) {
	a, err := s.lookup(name, TypeVersion)
	return VersionAttr{a}, err
}

// NumberAttr returns the handle of a number attribute (see StringAttr).
func (s *Schema) NumberAttr(name string) (NumberAttr, error) {
	a, err := s.lookup(name, TypeNumber)
	return NumberAttr{a}, err
}

// BoolAttr returns the handle of a bool attribute (see StringAttr).
func (s *Schema) BoolAttr(name string) (BoolAttr, error) {
	a, err := s.lookup(name, TypeBool)
	return BoolAttr{a}, err
}

// TimeAttr returns the handle of a time attribute (see StringAttr).
func (s *Schema) TimeAttr(name string) (TimeAttr, error) {
	a, err := s.lookup(name, TypeTime)
	return TimeAttr{a}, err
}

// StringSetAttr returns the handle of a string set attribute (see StringAttr).
func (s *Schema) StringSetAttr(name string) (StringSetAttr, error) {
	a, err := s.lookup(name, TypeStringSet)
	return StringSetAttr{a}, err
}
