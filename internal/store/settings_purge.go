package store

import (
	"context"
	"errors"
	"fmt"
)

// PurgeSettings deletes the settings under prefix that stale reports as
// stale. It reads one page at a time and deletes each page's stale keys in
// its own transaction, so no transaction grows with the table; a key
// deleted meanwhile by someone else is not counted. It says how many it
// deleted.
func PurgeSettings(ctx context.Context, st Store, prefix string, stale func(Setting) bool) (int, error) {
	purged, after := 0, ""
	for {
		page, err := st.Read().Settings().ListPrefix(ctx, prefix, after, 500)
		if err != nil {
			return purged, fmt.Errorf("listing %s settings: %w", prefix, err)
		}
		if len(page) == 0 {
			return purged, nil
		}
		after = page[len(page)-1].Key
		var doomed []string
		for _, s := range page {
			if stale(s) {
				doomed = append(doomed, s.Key)
			}
		}
		if len(doomed) == 0 {
			continue
		}
		deleted := 0
		err = st.Tx(ctx, func(q Queries) error {
			deleted = 0 // a retried transaction starts again
			for _, k := range doomed {
				err := q.Settings().Delete(ctx, k)
				if errors.Is(err, ErrNotFound) {
					continue
				}
				if err != nil {
					return err
				}
				deleted++
			}
			return nil
		})
		if err != nil {
			return purged, fmt.Errorf("deleting stale %s settings: %w", prefix, err)
		}
		purged += deleted
	}
}
