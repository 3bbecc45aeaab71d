package compliance

import (
	"github.com/steward-mdm/steward/internal/secrets"
	"github.com/steward-mdm/steward/internal/store"
)

// SchedulePasswordsResealJob re-seals every report schedule's archive
// password under sealer's current master key (sealer still opens the
// previous one).
func SchedulePasswordsResealJob(sealer secrets.Sealer) store.ResealJob {
	return store.ColumnJob("report schedules' passwords", sealer, store.SealedSchedulePasswords,
		func(r store.SealedRow) []byte { return scheduleAD(r.TenantID, r.ID) })
}
