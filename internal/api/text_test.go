package api

import (
	"testing"

	"github.com/steward-mdm/steward/internal/store"
	"github.com/steward-mdm/steward/internal/store/storetest"
)

// TestTextTheDatabaseCannotHold: a NUL byte or invalid UTF-8 in a path or a
// body is the client's mistake, answered 4xx on both engines; PostgreSQL
// refuses such text, which used to surface as a 500.
func TestTextTheDatabaseCannotHold(t *testing.T) {
	storetest.ForEachEngine(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st)
		base := "/api/v1/tenants/" + e.rootID
		for _, p := range []string{base + "/devices/a%00b", base + "/devices/%FF", "/api/v1/tenants/a%00b/devices"} {
			if r := e.do(e.owner, "GET", p, nil); r.status < 400 || r.status >= 500 {
				t.Errorf("GET %s: %d %s", p, r.status, r.body)
			}
		}
		if r := e.do(e.owner, "POST", base+"/groups", map[string]any{"name": "night\u0000shift", "kind": "static"}); r.status >= 500 {
			t.Errorf("a group name with a NUL byte: %d %s", r.status, r.body)
		}
	})
}
