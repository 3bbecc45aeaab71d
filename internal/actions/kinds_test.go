package actions

import (
	"strings"
	"testing"

	"github.com/steward-mdm/steward/internal/apple/mdmproto"
)

func TestOptionsFitTheAction(t *testing.T) {
	for _, c := range []struct {
		kind Kind
		o    Options
		want string // "" for valid
	}{
		{Lock, Options{Message: "Call IT", PhoneNumber: "+49 30 1234", PIN: "123456"}, ""},
		{Lock, Options{PIN: "12345"}, "exactly six digits"},
		{Lock, Options{PIN: "12a456"}, "exactly six digits"},
		{Restart, Options{PIN: "123456"}, "only used by lock and wipe"},
		{LostMode, Options{}, "needs a message or a phone number"},
		{LostMode, Options{PhoneNumber: "+49 30 1234"}, ""},
		{Wipe, Options{Message: "bye"}, "only shown by lock and lost mode"},
		{Lock, Options{Message: strings.Repeat("x", 201)}, "limited to 200 characters"},
	} {
		err := c.o.validate(c.kind)
		if (c.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%s %+v: %v, want %q", c.kind, c.o, err, c.want)
		}
	}
}

func TestEveryActionHasAPermissionAndCommands(t *testing.T) {
	for _, name := range Kinds() {
		k := Kind(name)
		if _, ok := Permission(k); !ok {
			t.Errorf("%s has no permission", k)
		}
		reqs := requests(k, Options{}, "org.steward.enrolment.x")
		if k == Delete {
			if len(reqs) != 0 {
				t.Errorf("delete sends commands: %v", reqs)
			}
			continue
		}
		if len(reqs) == 0 {
			t.Errorf("%s sends no command", k)
		}
	}
	if r := requests(Retire, Options{}, "org.steward.enrolment.x"); r[0].(mdmproto.RemoveProfile).Identifier != "org.steward.enrolment.x" {
		t.Errorf("retire removes %+v", r)
	}
	for _, k := range []Kind{Wipe, Retire, Delete} {
		if !kinds[k].twoPerson {
			t.Errorf("%s does not need a second admin", k)
		}
	}
}
