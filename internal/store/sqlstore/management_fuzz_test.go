package sqlstore

import (
	"regexp"
	"strconv"
	"testing"

	"github.com/steward-mdm/steward/internal/store"
)

var placeholder = regexp.MustCompile(`\$[0-9]+`)

// FuzzSearchStatement feeds searchStatement the parts of a device query a
// client controls. It must not panic, must refuse what it cannot use, and
// must never splice a client value into the SQL text.
func FuzzSearchStatement(f *testing.F) {
	f.Add("last_seen", "1700000000000000", "01a2-id", "iPh", "group-1", true)
	f.Add("model", "Mac_14,2", "z", "%_\\", "", false)
	f.Add("os_version", "017.004.001", "", "' OR 1=1 --", "g'); DROP TABLE devices; --", true)
	f.Add("enrolled", "-9223372036854775808", "x", "", "", false)
	f.Add("colour", "", "", "", "", false)
	f.Fuzz(func(t *testing.T, sortBy, value, id, prefix, group string, desc bool) {
		q := store.DeviceQuery{Sort: store.DeviceSort(sortBy), Descending: desc, ModelPrefix: prefix, GroupID: group,
			Platform: prefix, After: store.DeviceCursor{Value: value, ID: id}, Limit: len(value) - 3}
		query, args, limit, err := searchStatement("tenant-"+id, q)
		if err != nil {
			if query != "" || args != nil {
				t.Fatalf("an error came with a statement: %q", query)
			}
			return
		}
		if _, known := deviceSortColumns[q.Sort]; !known && q.Sort != "" {
			t.Fatalf("unknown sort %q accepted", q.Sort)
		}
		if limit < 1 || limit > 1000 {
			t.Fatalf("limit %d outside 1..1000", limit)
		}
		used := map[string]bool{}
		for _, m := range placeholder.FindAllString(query, -1) {
			used[m] = true
		}
		if len(used) != len(args) || !used["$"+strconv.Itoa(len(args))] {
			t.Fatalf("placeholders %v for %d arguments in %q", used, len(args), query)
		}
		// The same query with every client value replaced must give the same
		// SQL text: values only ever travel as arguments.
		neutral := func(v string) string {
			if v == "" {
				return ""
			}
			return "1"
		}
		q.ModelPrefix, q.GroupID, q.Platform = neutral(prefix), neutral(group), neutral(prefix)
		q.After = store.DeviceCursor{Value: neutral(value), ID: neutral(id)}
		shape, _, _, err := searchStatement("t", q)
		if err != nil || shape != query {
			t.Fatalf("the SQL text depends on client values:\n%q\n%q (%v)", query, shape, err)
		}
	})
}
