package rules

import (
	"errors"
	"strings"
	"testing"
)

var unsatisfiableCases = []struct {
	name string
	rule string
	path string // of the contradictory group
	want string // part of the message
}{
	{"contradictory range", `{"all":[{"attr":"os.version","op":"gte","value":"18"},{"attr":"os.version","op":"lt","value":"17"}]}`,
		"", "all[0] and all[1] contradict each other: together they leave no os.version"},
	{"open range on a point", `{"all":[{"attr":"battery","op":"gt","value":0.5},{"attr":"battery","op":"lt","value":0.5}]}`, "", "leave no battery"},
	{"half-open range on a point", `{"all":[{"attr":"os.version","op":"gte","value":"17"},{"attr":"os.version","op":"lt","value":"17.0.0"}]}`, "", "leave no"},
	{"time range", `{"all":[{"attr":"enrolled_at","op":"gt","value":"2026-02-01T00:00:00Z"},{"attr":"enrolled_at","op":"lte","value":"2026-01-01T00:00:00Z"}]}`, "", "leave no"},
	{"age range", `{"all":[{"attr":"last_checkin","op":"within","value":"7d"},{"attr":"last_checkin","op":"older_than","value":"30d"}]}`, "", "leave no"},
	{"age boundary", `{"all":[{"attr":"last_checkin","op":"within","value":"7d"},{"attr":"last_checkin","op":"older_than","value":"1w"}]}`, "", "leave no"},
	{"two eq", `{"all":[{"attr":"ownership","op":"eq","value":"corporate"},{"attr":"model","op":"exists"},{"attr":"ownership","op":"eq","value":"personal"}]}`,
		"", "all[0] and all[2] contradict each other: no ownership satisfies both"},
	{"two bool eq", `{"all":[{"attr":"supervised","op":"eq","value":true},{"attr":"supervised","op":"eq","value":false}]}`, "", "contradict"},
	{"eq outside range", `{"all":[{"attr":"os.version","op":"lt","value":"17"},{"attr":"os.version","op":"eq","value":"17.2"}]}`, "", "all[1] and all[0] contradict"},
	{"eq and ne", `{"all":[{"attr":"model","op":"eq","value":"x"},{"attr":"model","op":"ne","value":"x"}]}`, "", "contradict"},
	{"eq not in list", `{"all":[{"attr":"model","op":"eq","value":"x"},{"attr":"model","op":"in","value":["y","z"]}]}`, "", "contradict"},
	{"disjoint lists", `{"all":[{"attr":"model","op":"in","value":["a","b"]},{"attr":"model","op":"in","value":["c"]}]}`, "", "no value listed at all[0]"},
	{"list excluded", `{"all":[{"attr":"battery","op":"in","value":[1,2]},{"attr":"battery","op":"not_in","value":[2,1]}]}`, "", "no value listed"},
	{"list outside range", `{"all":[{"attr":"os.version","op":"in","value":["15","16"]},{"attr":"os.version","op":"gte","value":"17"}]}`, "", "no value listed"},
	{"pinned point excluded", `{"all":[{"attr":"battery","op":"gte","value":1},{"attr":"battery","op":"lte","value":1},{"attr":"battery","op":"ne","value":1}]}`, "", "allow only one battery, which all[2] excludes"},
	{"x and not x", `{"all":[{"attr":"apps","op":"contains","value":"com.bad"},{"not":{"attr":"apps","op":"contains","value":"com.bad"}}]}`, "", "all[0] and all[1] contradict each other: one is the negation"},
	{"not x and x", `{"all":[{"not":{"any":[{"attr":"model","op":"exists"},{"attr":"tags","op":"contains","value":"a"}]}},{"any":[{"attr":"model","op":"exists"},{"attr":"tags","op":"contains","value":"a"}]}]}`, "", "negation"},
	{"x and not x canonical", `{"all":[{"attr":"model","op":"in","value":["b","a","a"]},{"not":{"op":"in","value":["a","b"],"attr":"model"}}]}`, "", "negation"},
	{"exists and missing", `{"all":[{"attr":"model","op":"exists"},{"attr":"model","op":"missing"}]}`, "", "negation"},
	{"missing and a comparison", `{"all":[{"attr":"model","op":"missing"},{"attr":"model","op":"prefix","value":"iPhone"}]}`, "", "cannot be missing"},
	{"negated range", `{"all":[{"not":{"attr":"os.version","op":"lt","value":"18"}},{"attr":"os.version","op":"lt","value":"17"}]}`, "", "leave no os.version"},
	{"double negation", `{"all":[{"not":{"not":{"attr":"battery","op":"gt","value":5}}},{"attr":"battery","op":"lt","value":1}]}`, "", "leave no"},
	{"nested all flattened", `{"all":[{"attr":"os.version","op":"gte","value":"18"},{"all":[{"attr":"model","op":"exists"},{"attr":"os.version","op":"lt","value":"17"}]}]}`,
		"", "all[0] and all[1].all[1] contradict"},
	{"nested all inside any", `{"any":[{"all":[{"attr":"battery","op":"gt","value":1},{"attr":"battery","op":"lt","value":0}]},{"all":[{"attr":"model","op":"eq","value":"a"},{"attr":"model","op":"eq","value":"b"}]}]}`,
		"", "none of the alternatives"},
	{"unsatisfiable child of all", `{"all":[{"attr":"model","op":"exists"},{"all":[{"attr":"battery","op":"gt","value":1},{"attr":"battery","op":"lt","value":0}]}]}`,
		"all[1]", "all[1].all[0] and all[1].all[1]"},
}

func TestUnsatisfiable(t *testing.T) {
	s := testSchema(t)
	for _, tc := range unsatisfiableCases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Compile([]byte(tc.rule), s)
			var rerr *Error
			if !errors.Is(err, ErrUnsatisfiable) || !errors.As(err, &rerr) {
				t.Fatalf("err = %v, want ErrUnsatisfiable", err)
			}
			if errors.Is(err, ErrInvalid) {
				t.Error("an unsatisfiable rule must not also wrap ErrInvalid")
			}
			if rerr.Path != tc.path || !strings.Contains(rerr.Message, tc.want) {
				t.Errorf("got path %q message %q; want path %q and %q", rerr.Path, rerr.Message, tc.path, tc.want)
			}
			if !strings.Contains(err.Error(), "can never match") {
				t.Errorf("Error() = %q should say the rule can never match", err.Error())
			}
		})
	}
}

// TestSatisfiableLookAlikes: rules that resemble contradictions but can
// match must compile.
var satisfiableLookAlikes = []string{
	`{"all":[{"attr":"os.version","op":"gte","value":"17"},{"attr":"os.version","op":"lt","value":"18"}]}`,
	`{"all":[{"attr":"os.version","op":"gte","value":"17"},{"attr":"os.version","op":"lte","value":"17.0"}]}`, // the single point 17
	`{"all":[{"attr":"os.version","op":"gt","value":"17"},{"attr":"os.version","op":"lt","value":"17.0.1"}]}`, // 17.0.0.1
	`{"all":[{"attr":"os.version","op":"eq","value":"17"},{"attr":"os.version","op":"eq","value":"17.0.0"}]}`, // same version
	`{"any":[{"attr":"os.version","op":"gte","value":"18"},{"attr":"os.version","op":"lt","value":"17"}]}`,
	`{"all":[{"attr":"os.version","op":"gte","value":"18"},{"attr":"storage.free","op":"lt","value":17}]}`, // different attributes
	`{"all":[{"attr":"model","op":"eq","value":"a"},{"attr":"model","op":"ne","value":"b"}]}`,
	`{"all":[{"attr":"model","op":"in","value":["a","b"]},{"attr":"model","op":"in","value":["b","c"]}]}`,
	`{"all":[{"attr":"battery","op":"in","value":[1,2]},{"attr":"battery","op":"not_in","value":[1]}]}`,
	`{"all":[{"attr":"apps","op":"contains","value":"a"},{"not":{"attr":"apps","op":"contains","value":"b"}}]}`,
	`{"all":[{"attr":"last_checkin","op":"within","value":"30d"},{"attr":"last_checkin","op":"older_than","value":"7d"}]}`,
	`{"all":[{"attr":"model","op":"missing"},{"attr":"ownership","op":"eq","value":"corporate"}]}`,
	`{"all":[{"attr":"model","op":"missing"},{"not":{"attr":"model","op":"exists"}}]}`,
	`{"all":[{"attr":"model","op":"exists"},{"not":{"attr":"model","op":"eq","value":"x"}}]}`,
	`{"all":[{"attr":"battery","op":"gte","value":1},{"attr":"battery","op":"lte","value":1},{"attr":"battery","op":"ne","value":2}]}`,
	`{"any":[{"all":[{"attr":"battery","op":"gt","value":1},{"attr":"battery","op":"lt","value":0}]},{"attr":"model","op":"exists"}]}`, // one dead branch
	`{"any":[{"all":[{"attr":"battery","op":"gt","value":1},{"attr":"model","op":"exists"}]},{"all":[{"attr":"model","op":"eq","value":"a"},{"attr":"battery","op":"lt","value":0}]}]}`,
	`{"not":{"all":[{"attr":"battery","op":"gt","value":1},{"attr":"battery","op":"lt","value":0}]}}`,
	`{"all":[{"attr":"supervised","op":"eq","value":true},{"attr":"encrypted","op":"eq","value":false}]}`,
}

func TestSatisfiableLookAlikes(t *testing.T) {
	s := testSchema(t)
	for _, rule := range satisfiableLookAlikes {
		if _, err := Compile([]byte(rule), s); err != nil {
			t.Errorf("%s: %v", rule, err)
		}
	}
}
