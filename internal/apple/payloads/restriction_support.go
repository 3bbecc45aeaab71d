package payloads

// restrictionRule is what Apple's schema mdm/profiles/com.apple.applicationaccess.yaml
// says of one restriction Steward writes (Restrictions.pairs): its key's
// supportedOS entries.
type restrictionRule struct {
	field    string // JSON name in Restrictions
	appleKey string
	set      func(*Restrictions) bool
	// notOnMac: macOS "introduced: n/a". A Mac installs the payload and
	// ignores the key.
	notOnMac bool
	// iOSSupervised: iOS "supervised: true"; macOS has no such condition
	// for any of these keys.
	iOSSupervised bool
	// iOSUserEnrollment, macUserEnrollment: userenrollment mode
	// "forbidden" on that platform.
	iOSUserEnrollment, macUserEnrollment bool
}

// restrictionRules covers every key Restrictions.pairs writes, in its order.
var restrictionRules = []restrictionRule{
	{field: "allow_camera", appleKey: "allowCamera", set: func(r *Restrictions) bool { return r.AllowCamera != nil },
		iOSUserEnrollment: true, macUserEnrollment: true},
	{field: "allow_app_installation", appleKey: "allowAppInstallation", set: func(r *Restrictions) bool { return r.AllowAppInstallation != nil },
		notOnMac: true, iOSSupervised: true, iOSUserEnrollment: true},
	{field: "allow_open_from_managed_to_unmanaged", appleKey: "allowOpenFromManagedToUnmanaged",
		set: func(r *Restrictions) bool { return r.AllowOpenFromManagedToUnmanaged != nil }, notOnMac: true},
	{field: "allow_open_from_unmanaged_to_managed", appleKey: "allowOpenFromUnmanagedToManaged",
		set: func(r *Restrictions) bool { return r.AllowOpenFromUnmanagedToManaged != nil }, notOnMac: true},
	{field: "require_managed_pasteboard", appleKey: "requireManagedPasteboard",
		set: func(r *Restrictions) bool { return r.RequireManagedPasteboard != nil }, notOnMac: true},
	{field: "allow_screenshot", appleKey: "allowScreenShot", set: func(r *Restrictions) bool { return r.AllowScreenshot != nil }},
	{field: "allow_managed_apps_cloud_sync", appleKey: "allowManagedAppsCloudSync",
		set: func(r *Restrictions) bool { return r.AllowManagedAppsCloudSync != nil }, notOnMac: true},
	{field: "allow_cloud_backup", appleKey: "allowCloudBackup", set: func(r *Restrictions) bool { return r.AllowCloudBackup != nil },
		notOnMac: true, iOSUserEnrollment: true},
	{field: "allow_cloud_document_sync", appleKey: "allowCloudDocumentSync", set: func(r *Restrictions) bool { return r.AllowCloudDocumentSync != nil },
		iOSSupervised: true, iOSUserEnrollment: true, macUserEnrollment: true},
	{field: "allow_enterprise_book_backup", appleKey: "allowEnterpriseBookBackup",
		set: func(r *Restrictions) bool { return r.AllowEnterpriseBookBackup != nil }, notOnMac: true},
	{field: "force_encrypted_backup", appleKey: "forceEncryptedBackup", set: func(r *Restrictions) bool { return r.ForceEncryptedBackup != nil },
		notOnMac: true},
	{field: "allow_airdrop", appleKey: "allowAirDrop", set: func(r *Restrictions) bool { return r.AllowAirDrop != nil },
		iOSSupervised: true, iOSUserEnrollment: true, macUserEnrollment: true},
	{field: "allow_erase_content_and_settings", appleKey: "allowEraseContentAndSettings",
		set:           func(r *Restrictions) bool { return r.AllowEraseContentAndSettings != nil },
		iOSSupervised: true, iOSUserEnrollment: true, macUserEnrollment: true},
	{field: "allow_profile_installation", appleKey: "allowUIConfigurationProfileInstallation",
		set:           func(r *Restrictions) bool { return r.AllowProfileInstallation != nil },
		iOSSupervised: true, iOSUserEnrollment: true, macUserEnrollment: true},
}

// unappliedOn says whether a device like t refuses or ignores the key
// although it takes the payload.
func (r restrictionRule) unappliedOn(t Target) bool {
	switch {
	case t.Mac:
		return r.notOnMac || t.UserEnrollment && r.macUserEnrollment
	case t.UserEnrollment:
		return r.iOSUserEnrollment
	}
	return false
}
