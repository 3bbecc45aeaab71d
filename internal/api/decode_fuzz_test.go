package api

import (
	"reflect"
	"testing"

	"github.com/steward-mdm/steward/internal/apperr"
)

// FuzzDecodeRequest feeds arbitrary bytes to the strict decoder for every
// request type the routes accept: it must never panic, and every refusal
// must be a client error.
func FuzzDecodeRequest(f *testing.F) {
	for _, seed := range []string{`{}`, `{"name":"x"}`, `{"name":1}`, `[]`, `null`, `{"a":`, `{"name":"x"} {}`,
		`{"allowed_cidrs":["10.0.0.0/8"]}`, `{"expires_in_days":1e400}`, "\xff\xfe", `{"permissions":[null]}`} {
		f.Add([]byte(seed))
	}
	var types []reflect.Type
	for _, rt := range New(Options{}).Routes() {
		if rt.In != nil {
			types = append(types, reflect.TypeOf(rt.In))
		}
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, typ := range types {
			v := reflect.New(typ).Interface()
			err := decodeBytes(body, v)
			if err != nil && apperr.As(err).Status() >= 500 {
				t.Fatalf("%s: server error for client input: %v", typ, err)
			}
		}
	})
}
