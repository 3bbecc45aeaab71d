package mdmproto

import "strings"

// Fixtures are written for this package in the shape Apple documents for
// each message; identifiers and tokens are made up.

const plistHead = `<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
`

// doc wraps dictionary entries in a plist document.
func doc(entries ...string) []byte {
	return []byte(plistHead + "<dict>\n" + strings.Join(entries, "\n") + "\n</dict>\n</plist>\n")
}

func kv(key, value string) string { return "<key>" + key + "</key><string>" + value + "</string>" }
func kd(key, b64 string) string   { return "<key>" + key + "</key><data>" + b64 + "</data>" }
func kb(key string, v bool) string {
	if v {
		return "<key>" + key + "</key><true/>"
	}
	return "<key>" + key + "</key><false/>"
}
func ki(key, n string) string     { return "<key>" + key + "</key><integer>" + n + "</integer>" }
func kr(key, n string) string     { return "<key>" + key + "</key><real>" + n + "</real>" }
func kraw(key, xml string) string { return "<key>" + key + "</key>" + xml }

const (
	fixtureUDID         = "00008110-000A3D2E1E38801E"
	fixtureEnrollmentID = "7F6C2D0A-4B8E-4C55-9B3E-2A1F6E0C9D11"
	fixtureTopic        = "com.apple.mgmt.External.5b0c1f5e-8f0e-4a7e-9a53-0f8f0e2c1d3a"
	fixtureCommandUUID  = "3E1C9A42-6F2B-4E8D-A1C7-5D9B0F3E2A10"
	// "push-token-bytes" and "unlock-token-secret" in base64.
	fixtureTokenB64  = "cHVzaC10b2tlbi1ieXRlcw=="
	fixtureUnlockB64 = "dW5sb2NrLXRva2VuLXNlY3JldA=="
)

var (
	authenticateDevice = doc(
		kv("MessageType", "Authenticate"), kv("Topic", fixtureTopic), kv("UDID", fixtureUDID),
		kv("DeviceName", "Reception iPad"), kv("Model", "iPad13,18"), kv("ModelName", "iPad"),
		kv("ProductName", "iPad13,18"), kv("SerialNumber", "F9FXK2L3Q1"), kv("OSVersion", "17.4.1"),
		kv("BuildVersion", "21E236"), kv("IMEI", "35 396409 123456 7"), kv("MEID", "35396409123456"),
	)
	authenticateUserEnrollment = doc(
		kv("MessageType", "Authenticate"), kv("Topic", fixtureTopic), kv("EnrollmentID", fixtureEnrollmentID),
		kv("Model", "iPhone15,2"), kv("ModelName", "iPhone"), kv("OSVersion", "17.5"),
	)
	tokenUpdateDevice = doc(
		kv("MessageType", "TokenUpdate"), kv("Topic", fixtureTopic), kv("UDID", fixtureUDID),
		kd("Token", fixtureTokenB64), kv("PushMagic", "2D1A3C4B-0000-4E5F-8A9B-C0D1E2F3A4B5"),
		kd("UnlockToken", fixtureUnlockB64), kb("AwaitingConfiguration", false),
	)
	tokenUpdateUser = doc(
		kv("MessageType", "TokenUpdate"), kv("Topic", fixtureTopic), kv("UDID", fixtureUDID),
		kv("UserID", "A1B2C3D4-1111-2222-3333-444455556666"), kv("UserShortName", "jdoe"),
		kv("UserLongName", "Jane Doe"), kd("Token", fixtureTokenB64),
		kv("PushMagic", "9F8E7D6C-0000-4B5A-8C7D-6E5F4A3B2C1D"), kb("NotOnConsole", false),
	)
	checkOut         = doc(kv("MessageType", "CheckOut"), kv("Topic", fixtureTopic), kv("UDID", fixtureUDID))
	userAuthenticate = doc(
		kv("MessageType", "UserAuthenticate"), kv("UDID", fixtureUDID),
		kv("UserID", "A1B2C3D4-1111-2222-3333-444455556666"), kv("UserShortName", "jdoe"),
		kv("UserLongName", "Jane Doe"),
	)
	setBootstrapToken = doc(
		kv("MessageType", "SetBootstrapToken"), kv("UDID", fixtureUDID),
		kd("BootstrapToken", "Ym9vdHN0cmFwLXRva2Vu"), kb("AwaitingConfiguration", true),
	)
	getBootstrapToken = doc(kv("MessageType", "GetBootstrapToken"), kv("UDID", fixtureUDID), kb("AwaitingConfiguration", true))
	// Data is {"SyncTokens":{"DeclarationsToken":"abc"}} in base64.
	declarativeManagement = doc(
		kv("MessageType", "DeclarativeManagement"), kv("UDID", fixtureUDID), kv("Endpoint", "declaration-items"),
		kd("Data", "eyJTeW5jVG9rZW5zIjp7IkRlY2xhcmF0aW9uc1Rva2VuIjoiYWJjIn19"),
	)
)

// result builds an Acknowledged result for fixtureUDID with extra entries.
func result(requestType string, entries ...string) []byte {
	head := []string{kv("Status", "Acknowledged"), kv("UDID", fixtureUDID), kv("CommandUUID", fixtureCommandUUID)}
	if requestType != "" {
		head = append(head, kv("RequestType", requestType))
	}
	return doc(append(head, entries...)...)
}

var (
	idleResult           = doc(kv("Status", "Idle"), kv("UDID", fixtureUDID))
	deviceInformationRes = result("DeviceInformation", kraw("QueryResponses", "<dict>"+
		kv("DeviceName", "Reception iPad")+kv("OSVersion", "17.4.1")+kv("SerialNumber", "F9FXK2L3Q1")+
		kv("Model", "iPad13,18")+kv("ModelName", "iPad")+kr("DeviceCapacity", "119.2")+
		ki("AvailableDeviceCapacity", "87")+kr("BatteryLevel", "0.81")+kb("IsSupervised", true)+
		kb("IsActivationLockEnabled", false)+kv("WiFiMAC", "f0:18:98:0a:bc:de")+ki("CellularTechnology", "3")+
		"</dict>"))
	// An iPhone on iOS 17 with a physical SIM and an eSIM, its data on the
	// eSIM; every subkey Apple documents, most of which Steward ignores.
	serviceSubscriptionsRes = result("DeviceInformation", kraw("QueryResponses", "<dict>"+
		kraw("ServiceSubscriptions", "<array><dict>"+
			kv("Slot", "CTSubscriptionSlotOne")+kv("Label", "Primary")+kv("LabelID", "5B0E4D1A-7C2F-4E39-9A61-3D8B2F0C7E15")+
			kv("IMEI", "35 693803 564380 9")+kv("ICCID", "8949 0200 0012 3456 7890")+kv("PhoneNumber", "+49 1575 5550100")+
			kv("CurrentCarrierNetwork", "Telekom.de")+kv("SubscriberCarrierNetwork", "Telekom.de")+kv("CurrentMCC", "262")+
			kv("CurrentMNC", "01")+kv("CarrierSettingsVersion", "59.0")+kb("IsDataPreferred", false)+kb("IsVoicePreferred", true)+
			kb("IsRoaming", false)+
			"</dict><dict>"+
			kv("Slot", "CTSubscriptionSlotTwo")+kv("Label", "Business")+kv("EID", "89049032007008882600012345678901")+
			kv("IMEI", "35 693803 564381 7")+kv("ICCID", "8949 2200 0098 7654 3210")+kv("PhoneNumber", "+49 1520 5550199")+
			kv("CurrentCarrierNetwork", "Vodafone.de")+kb("IsDataPreferred", true)+kb("IsVoicePreferred", false)+kb("IsRoaming", true)+
			"</dict></array>")+
		"</dict>"))
	securityInfoRes = result("SecurityInfo", kraw("SecurityInfo", "<dict>"+
		ki("HardwareEncryptionCaps", "3")+kb("PasscodePresent", true)+kb("PasscodeCompliant", true)+
		kb("PasscodeCompliantWithProfiles", false)+ki("PasscodeLockGracePeriodEnforced", "0")+
		kraw("ManagementStatus", "<dict>"+kb("EnrolledViaDEP", true)+kb("IsUserEnrollment", false)+"</dict>")+
		"</dict>"))
	installedAppsRes = result("InstalledApplicationList", kraw("InstalledApplicationList", "<array><dict>"+
		kv("Identifier", "com.example.expenses")+kv("Name", "Expenses")+kv("ShortVersion", "4.2")+
		kv("Version", "420")+ki("BundleSize", "48211968")+kb("IsValidated", true)+
		"</dict><dict>"+kv("Identifier", "com.example.notes")+kv("Name", "Notes")+kv("ShortVersion", "1.0")+
		"</dict></array>"))
	managedAppsRes = result("ManagedApplicationList", kraw("ManagedApplicationList", "<dict>"+
		kraw("com.example.expenses", "<dict>"+kv("Status", "Managed")+ki("ManagementFlags", "1")+
			kb("HasConfiguration", false)+"</dict>")+"</dict>"))
	profileListRes = result("ProfileList", kraw("ProfileList", "<array><dict>"+
		kv("PayloadIdentifier", "com.example.mdm")+kv("PayloadUUID", "0C3A6D2E-1F4B-4A5C-9D8E-7F6A5B4C3D2E")+
		kv("PayloadDisplayName", "Example MDM")+ki("PayloadVersion", "1")+kb("IsManaged", true)+
		kraw("SignerCertificates", "<array><data>MAA=</data></array>")+
		kraw("PayloadContent", "<array><dict>"+kv("PayloadType", "com.apple.mdm")+
			kv("PayloadIdentifier", "com.example.mdm.mdm")+"</dict></array>")+
		"</dict></array>"))
	certificateListRes = result("CertificateList", kraw("CertificateList", "<array><dict>"+
		kv("CommonName", "Example Device CA")+kb("IsIdentity", false)+kd("Data", "MAA=")+"</dict></array>"))
	deviceLocationRes = result("DeviceLocation",
		kr("Latitude", "52.5163"), kr("Longitude", "13.3777"), kr("HorizontalAccuracy", "65"),
		kr("VerticalAccuracy", "10"), kr("Altitude", "34.5"), ki("Speed", "0"), kr("Course", "-1"),
		kv("Timestamp", "2026-11-23T10:15:30Z"))
	errorResult = doc(kv("Status", "Error"), kv("UDID", fixtureUDID), kv("CommandUUID", fixtureCommandUUID),
		kraw("ErrorChain", "<array><dict>"+ki("ErrorCode", "12021")+kv("ErrorDomain", "MCMDMErrorDomain")+
			kv("LocalizedDescription", "Unknown command")+kv("USEnglishDescription", "Unknown command")+
			"</dict></array>"))
)
