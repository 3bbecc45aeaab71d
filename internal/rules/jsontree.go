package rules

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// The rule is read token by token rather than with json.Unmarshal so that
// duplicate keys (which Unmarshal silently resolves to the last one) are
// refused, every error can name its JSON path, and nesting is bounded
// before any recursion can run deep.

type jsonKind uint8

const (
	jsonNull jsonKind = iota
	jsonBool
	jsonNumber
	jsonString
	jsonArray
	jsonObject
)

var jsonKindNames = [...]string{"null", "a boolean", "a number", "a string", "a list", "an object"}

func (k jsonKind) String() string { return jsonKindNames[k] }

type jsonValue struct {
	kind jsonKind
	b    bool
	s    string // string value, or the text of a number
	arr  []*jsonValue
	obj  []jsonField // in document order
}

type jsonField struct {
	key string
	val *jsonValue
}

// field returns the value of key, or nil.
func (v *jsonValue) field(key string) *jsonValue {
	for _, f := range v.obj {
		if f.key == key {
			return f.val
		}
	}
	return nil
}

// maxJSONDepth bounds nesting of JSON containers. A rule at maxDepth needs
// two containers per level ({"all":[…]}) plus a condition and its value list.
const maxJSONDepth = 2*maxDepth + 4

func parseJSON(raw []byte) (*jsonValue, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	v, err := readJSON(dec, "", 0)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errorAt("", "unexpected data after the rule; send exactly one JSON object")
	}
	return v, nil
}

func readJSON(dec *json.Decoder, path string, depth int) (*jsonValue, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, jsonSyntaxError(path, err)
	}
	switch t := tok.(type) {
	case nil:
		return &jsonValue{kind: jsonNull}, nil
	case bool:
		return &jsonValue{kind: jsonBool, b: t}, nil
	case json.Number:
		return &jsonValue{kind: jsonNumber, s: string(t)}, nil
	case string:
		return &jsonValue{kind: jsonString, s: t}, nil
	case json.Delim:
		if depth >= maxJSONDepth {
			return nil, errorAt(path, fmt.Sprintf("nested deeper than %d levels; flatten the rule", maxDepth))
		}
		if t == '[' {
			v := &jsonValue{kind: jsonArray}
			for dec.More() {
				elem, err := readJSON(dec, path+"["+strconv.Itoa(len(v.arr))+"]", depth+1)
				if err != nil {
					return nil, err
				}
				v.arr = append(v.arr, elem)
			}
			_, err := dec.Token() // ']'
			return v, jsonSyntaxError(path, err)
		}
		v := &jsonValue{kind: jsonObject}
		for dec.More() {
			keyTok, err := dec.Token()
			if err != nil {
				return nil, jsonSyntaxError(path, err)
			}
			key, ok := keyTok.(string)
			if !ok { // the decoder reports non-string keys as syntax errors; be defensive anyway
				return nil, errorAt(path, "object keys must be strings")
			}
			if v.field(key) != nil {
				return nil, errorAt(joinPath(path, key), "duplicate key; write each key once")
			}
			val, err := readJSON(dec, joinPath(path, key), depth+1)
			if err != nil {
				return nil, err
			}
			v.obj = append(v.obj, jsonField{key: key, val: val})
		}
		_, err := dec.Token() // '}'
		return v, jsonSyntaxError(path, err)
	}
	return nil, errorAt(path, "unexpected JSON token")
}

func jsonSyntaxError(path string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errorAt(path, "the JSON ends too early; check for missing brackets or quotes")
	}
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		return errorAt(path, fmt.Sprintf("not valid JSON at byte %d: %v", syn.Offset, syn))
	}
	return errorAt(path, "not valid JSON: "+err.Error())
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}
