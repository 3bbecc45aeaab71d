package sqlstore_test

import (
	"testing"

	"github.com/steward-mdm/steward/internal/store/storetest"
)

func TestPurgeDeprovisionedInRowBatches(t *testing.T) {
	storetest.ForEachEngine(t, storetest.CheckPurgeDeprovisionedInRowBatches)
}
