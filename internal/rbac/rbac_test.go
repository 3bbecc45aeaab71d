package rbac

import (
	"os"
	"testing"
)

func TestBuiltinRolesUseKnownPermissions(t *testing.T) {
	for _, r := range Builtin {
		for _, p := range r.Permissions {
			if !Known(p) {
				t.Errorf("role %s uses unknown permission %s", r.ID, p)
			}
		}
	}
}

// The promises about built-in roles, checked one by one.
func TestBuiltinRoleBoundaries(t *testing.T) {
	role := func(id string) Set {
		r, ok := BuiltinByID(id)
		if !ok {
			t.Fatalf("no built-in role %s", id)
		}
		return NewSet(r.Permissions...)
	}
	cases := []struct {
		role string
		has  []Permission
		lack []Permission
	}{
		{"owner", []Permission{"admin.owner", "tenant.delete", "device.wipe"}, nil},
		{"administrator", []Permission{"admin.manage", "device.wipe", "settings.manage"}, []Permission{"admin.owner", "tenant.delete"}},
		{"helpdesk", []Permission{"device.read", "device.lock", "device.locate"}, []Permission{"device.wipe", "settings.manage", "privacy.reveal", "admin.read"}},
		{"privacy_officer", []Permission{"privacy.manage", "privacy.export", "privacy.erase", "incident.manage"}, []Permission{"device.lock", "device.wipe", "device.locate", "device.manage"}},
		{"auditor", []Permission{"audit.read", "audit.export", "device.read"}, []Permission{"privacy.reveal", "device.lock", "tenant.manage", "admin.manage", "token.manage"}},
		{"readonly", []Permission{"tenant.read", "device.read"}, []Permission{"audit.read", "privacy.reveal", "device.lock"}},
	}
	for _, c := range cases {
		set := role(c.role)
		for _, p := range c.has {
			if !set.Has(p) {
				t.Errorf("%s lacks %s", c.role, p)
			}
		}
		for _, p := range c.lack {
			if set.Has(p) {
				t.Errorf("%s must not have %s", c.role, p)
			}
		}
	}
}

func TestPermissionsDocIsCurrent(t *testing.T) {
	const file = "../../docs/permissions.md"
	want := Markdown()
	if os.Getenv("STEWARD_UPDATE_DOCS") == "1" {
		if err := os.WriteFile(file, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(file)
	if err != nil || string(got) != want {
		t.Fatalf("docs/permissions.md is stale; regenerate with STEWARD_UPDATE_DOCS=1 go test ./internal/rbac (%v)", err)
	}
}
