package actions

import (
	"context"
	"fmt"

	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/store"
)

// ExportDevice lists the remote actions asked for device d, for its
// person's data export: those carried out, and those that never ran
// (rejected, expired, refused by a rule), with who asked, why, and what
// became of each. A PIN a lock or wipe carried is never in it.
func (s *Service) ExportDevice(ctx context.Context, q store.Queries, d store.Device) ([]privacy.ExportRecord, error) {
	var recs []privacy.ExportRecord
	for page := (store.Page{Limit: 500}); ; {
		as, err := q.Actions().ForDevice(ctx, d.TenantID, d.ID, page)
		if err != nil {
			return nil, err
		}
		for _, a := range as {
			v := fmt.Sprintf("%s; asked by %s on %s for the reason %q; last changed %s", a.State, a.RequestedBy,
				privacy.ExportTime(a.CreatedAt), a.Reason, privacy.ExportTime(a.UpdatedAt))
			if a.ApprovalID != "" {
				v += "; needed a second admin's approval (" + a.ApprovalID + ")"
			}
			if a.Error != "" {
				v += "; " + a.Error
			}
			recs = append(recs, privacy.ExportRecord{Name: "Remote action " + a.Action + " (" + a.ID + ")", Value: v})
		}
		if len(as) < page.Limit {
			return recs, nil
		}
		page.After = as[len(as)-1].ID
	}
}
