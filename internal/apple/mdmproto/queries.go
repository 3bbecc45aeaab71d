package mdmproto

// queryRule is what a device asks of its enrolment before it answers one
// DeviceInformation query, as Apple's device-management schema gives it.
type queryRule struct {
	right AccessRights // 0: answered whatever the access rights
	// notOnUserEnrollment: a User Enrollment never answers it (hardware
	// and network identifiers).
	notOnUserEnrollment bool
}

// queryRules covers the queries Steward's data catalogue can ask. A query
// not listed here is taken to need the device information right and never
// asked of a User Enrollment, which Apple forbids for most of the rest.
var queryRules = map[string]queryRule{
	"UDID":                      {0, true},
	"SerialNumber":              {AccessDeviceInformation, true},
	"IMEI":                      {AccessDeviceInformation, true},
	"MEID":                      {AccessDeviceInformation, true},
	"IsActivationLockEnabled":   {AccessDeviceInformation, true},
	"DeviceName":                {AccessDeviceInformation, false},
	"OSVersion":                 {AccessDeviceInformation, false},
	"BuildVersion":              {AccessDeviceInformation, false},
	"ModelName":                 {AccessDeviceInformation, false},
	"Model":                     {AccessDeviceInformation, false},
	"ProductName":               {AccessDeviceInformation, false},
	"DeviceCapacity":            {AccessDeviceInformation, false},
	"AvailableDeviceCapacity":   {AccessDeviceInformation, false},
	"BatteryLevel":              {AccessDeviceInformation, false},
	"IsSupervised":              {AccessDeviceInformation, false},
	"IsMultiUser":               {AccessDeviceInformation, false},
	"PINRequiredForDeviceLock":  {AccessDeviceInformation, true},
	"PINRequiredForEraseDevice": {AccessDeviceInformation, true},
	"WiFiMAC":                   {AccessNetworkInformation, true},
	"BluetoothMAC":              {AccessNetworkInformation, true},
	"EthernetMAC":               {AccessNetworkInformation, true},
	"PhoneNumber":               {AccessNetworkInformation, true},
	"ICCID":                     {AccessNetworkInformation, true},
	"CurrentCarrierNetwork":     {AccessNetworkInformation, true},
	"ServiceSubscriptions":      {AccessNetworkInformation, true},
}

func ruleOf(query string) queryRule {
	if r, ok := queryRules[query]; ok {
		return r
	}
	return queryRule{right: AccessDeviceInformation, notOnUserEnrollment: true}
}

// KnownQuery says whether the query's rule is written out above rather
// than assumed.
func KnownQuery(query string) bool {
	_, ok := queryRules[query]
	return ok
}

// QueryRight is the access right a device needs before it answers the
// DeviceInformation query (0 when it needs none).
func QueryRight(query string) AccessRights { return ruleOf(query).right }

// AnsweredOnUserEnrollment says whether a device enrolled by User
// Enrollment answers the query at all.
func AnsweredOnUserEnrollment(query string) bool { return !ruleOf(query).notOnUserEnrollment }
