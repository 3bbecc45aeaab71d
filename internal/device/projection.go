package device

import (
	"encoding/json"
	"strings"

	"github.com/steward-mdm/steward/internal/store"
)

// Project builds a device's projection from its current inventory: only
// values stored in clear (non-personal) and not hidden by the collection
// policy, so the projection never holds what an admin could not see.
func Project(dev store.Device, current []store.InventoryValue) (store.DeviceProjection, error) {
	facts := make(map[string]json.RawMessage, len(current))
	for _, v := range current {
		if v.Ciphertext != nil || v.Hidden || len(v.Value) == 0 {
			continue
		}
		facts[v.Field] = json.RawMessage(v.Value)
	}
	doc, err := json.Marshal(facts)
	if err != nil {
		return store.DeviceProjection{}, err
	}
	p := store.DeviceProjection{TenantID: dev.TenantID, DeviceID: dev.ID, Facts: doc,
		OSVersion: stringFact(facts, "os.version"), Model: stringFact(facts, "hardware.model")}
	if p.Model == "" {
		p.Model = stringFact(facts, "hardware.product")
	}
	p.OSVersionKey = VersionKey(p.OSVersion)
	return p, nil
}

// maxProjectedText bounds a text column a device's report fills.
const maxProjectedText = 128

func stringFact(facts map[string]json.RawMessage, key string) string {
	var s string
	if raw, ok := facts[key]; !ok || json.Unmarshal(raw, &s) != nil {
		return ""
	}
	s = strings.TrimSpace(s)
	if len(s) > maxProjectedText {
		s = strings.ToValidUTF8(s[:maxProjectedText], "")
	}
	return s
}
