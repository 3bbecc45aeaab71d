package payloads

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// PersonalRefusal names the first setting in a profile (built by
// Definition.Build or accepted by ValidateCustom) that would let the
// organisation route or watch a personally owned device's own traffic:
// a proxy, a transparent proxy, an always-on VPN, a VPN that connects on
// demand beyond named work domains, or one that takes all networks. It
// returns "" when there is none, and an apperr error when the data is not
// a readable profile. Payload types are not judged here; the caller's
// allow-list does that.
func PersonalRefusal(mobileconfig []byte) (string, error) {
	list, err := payloadDicts(mobileconfig)
	if err != nil {
		return "", err
	}
	for i, p := range list {
		typ, _ := p["PayloadType"].(string)
		var why string
		switch typ {
		case "com.apple.wifi.managed":
			why = wifiProxy(p)
		case "com.apple.vpn.managed":
			why = vpnRouting(p)
		}
		if why != "" {
			return fmt.Sprintf("payload %d (%s) %s; such settings are not sent to personally owned devices", i, typ, why), nil
		}
	}
	return "", nil
}

// wifiProxy: any proxy type but None, or a proxy address at all, sends the
// network's traffic through the organisation (com.apple.wifi.managed.yaml,
// ProxyType Manual or Auto).
func wifiProxy(p map[string]any) string {
	if t, ok := p["ProxyType"].(string); ok && !strings.EqualFold(t, "None") {
		return "sets a proxy (ProxyType " + t + ")"
	}
	for _, key := range []string{"ProxyServer", "ProxyPACURL"} {
		if !isEmptyValue(p[key]) {
			return "sets a proxy (" + key + ")"
		}
	}
	return ""
}

// vpnRouting looks at a VPN payload and every dictionary in it, as Apple
// places on-demand and tunnel keys in the sub-dictionary of the VPN type
// (IKEv2, IPSec, PPP, VPN, TransparentProxy).
func vpnRouting(p map[string]any) string {
	switch t, _ := p["VPNType"].(string); t {
	case "AlwaysOn":
		return "is an always-on VPN"
	case "TransparentProxy":
		return "is a transparent proxy"
	}
	if proxies, ok := p["Proxies"].(map[string]any); ok && len(proxies) > 0 {
		return "sets a proxy (Proxies)"
	}
	return tunnelRouting(p)
}

func tunnelRouting(v any) string {
	switch t := v.(type) {
	case map[string]any:
		if truthy(t["IncludeAllNetworks"]) {
			return "sends all traffic through the VPN (IncludeAllNetworks)"
		}
		if truthy(t["OnDemandEnabled"]) {
			if why := onDemandBeyondWorkDomains(t); why != "" {
				return why
			}
		}
		for _, key := range slices.Sorted(maps.Keys(t)) { // sorted: the same reason every time
			if why := tunnelRouting(t[key]); why != "" {
				return why
			}
		}
	case []any:
		for _, child := range t {
			if why := tunnelRouting(child); why != "" {
				return why
			}
		}
	}
	return ""
}

// onDemandBeyondWorkDomains allows on-demand rules that only disconnect,
// ignore, or connect for named domains (EvaluateConnection, or Allow with
// the deprecated match-domain lists); a Connect rule connects for all
// traffic. Rules Steward cannot read count as connecting. A VPN that,
// once connected for a work domain, tunnels everything is not told apart:
// the profile does not say what routes the server pushes.
func onDemandBeyondWorkDomains(d map[string]any) string {
	const why = "connects on demand for more than named work domains"
	rules, hasRules := d["OnDemandRules"].([]any)
	if !hasRules {
		if legacyDomainsNamed(d) {
			return ""
		}
		return why + " (OnDemandEnabled without rules or named match domains)"
	}
	for _, r := range rules {
		rule, _ := r.(map[string]any)
		switch action, _ := rule["Action"].(string); action {
		case "Disconnect", "Ignore":
		case "Allow":
			// Allow connects by the legacy lists, read here as without rules.
			if !legacyDomainsNamed(d) {
				return why + " (Action Allow without named OnDemandMatchDomainsAlways or OnDemandMatchDomainsOnRetry)"
			}
		case "EvaluateConnection":
			params, _ := rule["ActionParameters"].([]any)
			if len(params) == 0 {
				return why + " (EvaluateConnection without domains)"
			}
			for _, p := range params {
				param, _ := p.(map[string]any)
				if !namedDomains(param["Domains"]) {
					return why + " (EvaluateConnection without named domains)"
				}
			}
		default:
			return why + " (Action " + action + ")"
		}
	}
	return ""
}

// legacyDomainsNamed reports that the deprecated lists that connect a VPN
// on demand (always, or when a lookup fails) name work domains only, and
// at least one of them is given; an empty list matches nothing.
func legacyDomainsNamed(d map[string]any) bool {
	given := false
	for _, key := range []string{"OnDemandMatchDomainsAlways", "OnDemandMatchDomainsOnRetry"} {
		v, present := d[key]
		if list, isList := v.([]any); !present || isList && len(list) == 0 {
			continue
		}
		if !namedDomains(v) {
			return false
		}
		given = true
	}
	return given
}

// namedDomains reports a non-empty list of domain names, each with at
// least two labels once a leading "*." is dropped: "*" or "com" would
// match every host or a whole top-level domain.
func namedDomains(v any) bool {
	list, _ := v.([]any)
	for _, item := range list {
		s, _ := item.(string)
		s = strings.Trim(strings.TrimSpace(s), "*.")
		labels := strings.Split(s, ".")
		if len(labels) < 2 || slices.Contains(labels, "") || strings.Contains(s, "*") {
			return false
		}
	}
	return len(list) > 0
}

// truthy reads a flag as a device would: <true/>, or a non-zero integer.
func truthy(v any) bool {
	switch t := v.(type) {
	case bool:
		return t
	case uint64:
		return t != 0
	case int64:
		return t != 0
	case float64:
		return t != 0
	case string:
		return t == "1" || strings.EqualFold(t, "true")
	}
	return false
}
