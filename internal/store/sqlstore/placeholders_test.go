package sqlstore

import (
	"fmt"
	"strings"
	"testing"
)

// IN lists are padded with their last ID to a handful of lengths, so the
// statement caches meet a dozen shapes however many IDs callers pass.
func TestPlaceholdersPadInLists(t *testing.T) {
	shapes := map[int]bool{}
	for n := 1; n <= maxInList; n++ {
		ids := make([]string, n)
		for i := range ids {
			ids[i] = fmt.Sprint("id-", i)
		}
		marks, args := placeholders(ids, 3)
		if len(args) < n || len(args) > max(2*n-1, 1) || len(args) > maxInList {
			t.Fatalf("%d IDs gave %d arguments", n, len(args))
		}
		for i, a := range args {
			if want := ids[min(i, n-1)]; a != want {
				t.Fatalf("%d IDs: argument %d = %v, want %s", n, i, a, want)
			}
		}
		if got := strings.Count(marks, "$"); got != len(args) || !strings.HasPrefix(marks, "$3") {
			t.Fatalf("%d IDs: marks %q do not match %d arguments from $3", n, marks, len(args))
		}
		shapes[len(args)] = true
	}
	if len(shapes) > 10 {
		t.Errorf("%d shapes of IN list, want at most 10", len(shapes))
	}
}

// SQLite's multi-row inserts use anonymous markers, which it binds by
// position without looking names up; PostgreSQL needs numbered ones.
func TestValuesList(t *testing.T) {
	if got := valuesList(postgresDialect, 2, 3); got != "($1, $2, $3), ($4, $5, $6)" {
		t.Errorf("postgres: %s", got)
	}
	if got := valuesList(sqliteDialect, 2, 3); got != "(?, ?, ?), (?, ?, ?)" {
		t.Errorf("sqlite: %s", got)
	}
}
