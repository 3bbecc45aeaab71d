// Package rules is the rule language of dynamic device groups and
// compliance policies: an admin writes a rule as JSON, Compile checks it
// against the device schema, and Eval decides it for one device's facts.
//
// # Writing rules
//
// A rule is one JSON object, either a condition
//
//	{"attr": "os.version", "op": "gte", "value": "17.4"}
//
// or a combination of rules:
//
//	{"all": [rule, …]}   every rule holds (and)
//	{"any": [rule, …]}   at least one rule holds (or)
//	{"not": rule}        the rule does not hold
//
// For example, "corporate iPhones not yet on iOS 17.4":
//
//	{"all": [
//	  {"attr": "ownership",  "op": "eq",     "value": "corporate"},
//	  {"attr": "model",      "op": "prefix", "value": "iPhone"},
//	  {"attr": "os.version", "op": "lt",     "value": "17.4"}
//	]}
//
// # Attributes and operators
//
// Each attribute has a type; the type decides the operators and how to
// write the value.
//
//	type        operators                                  value
//	string      eq ne                                      "text" (exact, case-sensitive)
//	            in not_in                                  ["a", "b"]
//	            prefix                                     "text"
//	version     eq ne lt lte gt gte                        "17.4.1" (a string, not a number)
//	            in not_in                                  ["16.7", "17.0"]
//	number      eq ne lt lte gt gte                        12.5
//	            in not_in                                  [1, 2, 3]
//	bool        eq ne                                      true or false
//	time        lt lte gt gte                              "2026-01-31T00:00:00Z" (RFC 3339)
//	            within older_than                          "7d", "12h", "1d12h"
//	string set  contains                                   "com.example.app"
//	            contains_any contains_all                  ["com.a", "com.b"]
//	any type    exists missing                             (no value)
//
// Versions compare segment by segment as numbers: "17.10" is after "17.9",
// and missing segments count as 0, so "17", "17.0" and "17.0.0" are equal.
// A device version that is not dotted numbers ("17.4 beta") compares with
// nothing: every comparison on it is unknown (see below).
//
// within "7d" holds when the time is at most 7 days before now (a time in
// the future counts as within); older_than "7d" holds when it is more than 7
// days before now. Durations are whole numbers with units w (week), d, h,
// m and s, largest unit first: "2w", "1d12h", "90m".
//
// # Devices that did not report
//
// A fact the device never reported is unknown, and the rule language keeps
// track of it instead of guessing. Every condition on an unknown fact is
// unknown, except exists (false) and missing (true). Unknowns combine the
// way an honest person would:
//
//   - all is false if any part is false, otherwise unknown if any part is
//     unknown, otherwise true;
//   - any is true if any part is true, otherwise unknown if any part is
//     unknown, otherwise false;
//   - not of unknown is unknown.
//
// A device joins a group, or counts as compliant, only when the rule is
// true. So "os.version gte 17" never marks a device compliant that has not
// reported its version, and neither does "not os.version lt 17". To treat a
// missing value as a match, say so:
//
//	{"any": [{"attr": "model", "op": "missing"},
//	         {"attr": "model", "op": "ne", "value": "iPad"}]}
//
// # Checks when saving
//
// A rule is refused, with the JSON path of the mistake ("all[2].value") and
// what to do, when it is not valid JSON, has an unknown or duplicate key, an
// unknown attribute, an operator its attribute's type does not support, a
// value of the wrong type, a bad version, time or duration, or an empty
// list, all or any. Limits: 64 KiB, 256 objects, 16 levels of nesting,
// 1,000 values per list, 1,024 bytes per text value.
//
// A rule that can never be true is refused as well, when the contradiction
// is inside one all (nested alls count as one): a rule and its negation,
// exists and missing, two different eq values, a range with nothing in it
// ("gte 18" and "lt 17", "within 7d" and "older_than 30d"), or eq/in values
// that the other conditions on the attribute exclude. An any is refused
// when every alternative is. These checks catch the common mistakes and
// never refuse a rule that can match; a rule that passes them may still
// match no device.
//
// # For developers
//
// NewSchema maps attribute names to types. A Facts holds one device's
// values, set through typed handles looked up once (Schema.VersionAttr and
// the like); reuse one Facts per goroutine with Reset. Rule.Eval allocates
// nothing and returns True, False or Unknown; Rule.Attributes says which
// facts a rule reads, so a device is re-evaluated only when one changes.
// Rule.String renders the rule for people and Rule.MarshalJSON in canonical
// form for storage.
package rules
