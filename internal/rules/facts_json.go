package rules

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

// SetJSON sets the named attribute from its JSON encoding, as device
// projections store facts: a string for string and version attributes, a
// number, a boolean, an RFC 3339 string for times, a list of strings for
// string sets. JSON null makes the attribute unknown.
//
// It returns an error wrapping ErrUnknownAttribute for a name the schema
// does not define, and an error naming the attribute and the expected JSON
// type (never the value) when raw does not decode as that type; the
// attribute is then left unknown, so a malformed report never counts as a
// match. It allocates while decoding; the typed setters are the fast path.
func (f *Facts) SetJSON(name string, raw []byte) error {
	i, ok := f.schema.index[name]
	if !ok {
		return fmt.Errorf("%w %q", ErrUnknownAttribute, name)
	}
	f.known[i] = false
	if string(bytes.TrimSpace(raw)) == "null" { // Unmarshal would accept null as "" or an empty list
		return nil
	}
	a := attr{schema: f.schema, index: i, sub: f.schema.sub[i]}
	typ := f.schema.types[i]
	var err error
	switch typ {
	case TypeString, TypeVersion, TypeTime:
		var s string
		if err = json.Unmarshal(raw, &s); err != nil {
			break
		}
		switch typ {
		case TypeString:
			f.SetString(StringAttr{a}, s)
		case TypeVersion:
			f.SetVersion(VersionAttr{a}, s)
		default:
			var t time.Time
			if t, err = time.Parse(time.RFC3339Nano, s); err == nil {
				f.SetTime(TimeAttr{a}, t)
			}
		}
	case TypeNumber:
		var n float64
		if err = json.Unmarshal(raw, &n); err == nil {
			f.SetNumber(NumberAttr{a}, n)
		}
	case TypeBool:
		var b bool
		if err = json.Unmarshal(raw, &b); err == nil {
			f.SetBool(BoolAttr{a}, b)
		}
	case TypeStringSet:
		var list []string
		if err = json.Unmarshal(raw, &list); err == nil {
			f.SetStringSet(StringSetAttr{a}, list)
		}
	}
	if err != nil {
		return fmt.Errorf("rules: fact %q must be JSON %s", name, jsonShape[typ])
	}
	return nil
}

var jsonShape = [...]string{
	TypeString: "text", TypeVersion: `text such as "17.4.1"`, TypeNumber: "a number", TypeBool: "true or false",
	TypeTime: "RFC 3339 text", TypeStringSet: "a list of strings",
}
