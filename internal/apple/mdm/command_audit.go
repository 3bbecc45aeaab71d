package mdm

import (
	"github.com/steward-mdm/steward/internal/apple/mdmproto"
	"github.com/steward-mdm/steward/internal/apple/payloads"
)

// commandTarget says what req acts on, for its audit entry: which profile,
// app or OS version, so the audit log keeps what was installed or removed
// after the command itself is purged (30 days after it finished). Never a
// secret: a profile is named by its identifier and version (its top-level
// PayloadUUID: payloads.ProfileVersion), never its content or a digest of
// it, which may carry credentials; a PIN, message or phone number is left
// out. nil for a request that targets nothing more
// than the device.
func commandTarget(req mdmproto.Request) map[string]any {
	switch r := req.(type) {
	case mdmproto.InstallProfile:
		out := map[string]any{}
		if id, uuid, err := payloads.ProfileVersion(r.Payload); err == nil {
			out["profile"], out["profile_uuid"] = id, uuid
		}
		return out
	case mdmproto.RemoveProfile:
		return map[string]any{"profile": r.Identifier}
	case mdmproto.InstallApplication:
		out := map[string]any{}
		if r.ITunesStoreID != 0 {
			out["app_store_id"] = r.ITunesStoreID
		}
		if r.Identifier != "" {
			out["app"] = r.Identifier
		}
		if r.ManifestURL != "" {
			out["manifest_url"] = r.ManifestURL
		}
		return out
	case mdmproto.RemoveApplication:
		return map[string]any{"app": r.Identifier}
	case mdmproto.ScheduleOSUpdate:
		var updates []map[string]any
		for _, u := range r.Updates {
			updates = append(updates, map[string]any{"product_key": u.ProductKey, "product_version": u.ProductVersion,
				"install_action": u.InstallAction})
		}
		return map[string]any{"os_updates": updates}
	}
	return nil
}
