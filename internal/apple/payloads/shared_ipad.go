package payloads

import "fmt"

// sharedIPadRefused holds the payload types Steward builds that an iPad in
// Shared iPad mode does not take on the device channel, from supportedOS
// iOS sharedipad in Apple's schema mdm/profiles/<PayloadType>.yaml: mode
// "forbidden", or devicechannel false (a user's channel only, which
// Steward does not install on).
var sharedIPadRefused = map[string]string{
	"com.apple.mobiledevice.passwordpolicy": "Apple does not allow passcode policies in Shared iPad mode",
	"com.apple.eas.account":                 "a Shared iPad takes Exchange accounts only in a user's session",
	"com.apple.mail.managed":                "a Shared iPad takes mail accounts only in a user's session",
	"com.apple.webClip.managed":             "a Shared iPad takes web clips only in a user's session",
}

// sharedIPadForbiddenRestrictions are keys of com.apple.applicationaccess
// Steward writes whose sharedipad mode is "forbidden".
var sharedIPadForbiddenRestrictions = []string{"allowCloudDocumentSync"}

// SharedIPadUnavailable explains why an iPad in Shared iPad mode refuses a
// profile (built by Definition.Build or accepted by ValidateCustom),
// naming the first payload type or setting at fault; it returns "" when
// the iPad takes it, and an apperr error when the data is not a readable
// profile.
func SharedIPadUnavailable(mobileconfig []byte) (string, error) {
	list, err := payloadDicts(mobileconfig)
	if err != nil {
		return "", err
	}
	for _, p := range list {
		typ, _ := p["PayloadType"].(string)
		if why, refused := sharedIPadRefused[typ]; refused {
			return fmt.Sprintf("%s (%s); deploy this profile to devices that are not Shared iPads, "+
				"or split these payloads into a profile for them", why, typ), nil
		}
		if typ != "com.apple.applicationaccess" {
			continue
		}
		for _, key := range sharedIPadForbiddenRestrictions {
			if _, set := p[key]; set {
				return fmt.Sprintf("Apple does not allow the restriction %s in Shared iPad mode; "+
					"move it to a profile for devices that are not Shared iPads", key), nil
			}
		}
	}
	return "", nil
}
