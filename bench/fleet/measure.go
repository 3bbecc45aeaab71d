package main

import (
	"fmt"
	"time"

	"github.com/steward-mdm/steward/internal/compliance"
	"github.com/steward-mdm/steward/internal/device"
	"github.com/steward-mdm/steward/internal/store"
)

// groups creates two dynamic groups, one over projected facts and one over
// the encrypted app lists, and times their refreshes.
func (b *bench) groups() {
	cases := []struct {
		name, label string
		rule        string
	}{
		{"Corporate iPhones below 17.4", "facts rule (platform, ownership, os.version)",
			`{"all":[{"attr":"platform","op":"eq","value":"ios"},{"attr":"ownership","op":"eq","value":"corporate"},{"attr":"os.version","op":"lt","value":"17.4"}]}`},
		{"Devices with app007", "apps rule (contains com.example.app007)",
			`{"attr":"apps","op":"contains","value":"com.example.app007"}`},
	}
	for i, c := range cases {
		start := time.Now()
		g, err := b.fleet.Devices.CreateGroup(b.ctx, b.tenant, device.GroupInput{Name: c.name, Kind: store.GroupDynamic, Rule: []byte(c.rule)}, b.owner)
		check(err)
		created := time.Since(start)
		b.analyzeTables("after creating the group")
		if i == 0 {
			b.groupID = g.ID
		}
		var took []time.Duration
		var last device.RefreshResult
		for r := 0; r < *refreshes; r++ {
			last, err = b.fleet.Devices.RefreshGroup(b.ctx, b.tenant, g.ID)
			check(err)
			took = append(took, last.Took)
		}
		fmt.Printf("group %q: %d members; created (first evaluation) in %s; refreshes: %s\n", c.name, g.Members,
			ms(created), spread(took))
		b.add("group refresh, "+c.label, "< 1 s", "%s (%d evaluated, %d members)", spread(took), last.Evaluated, g.Members)
		b.add("group create + first fill, "+c.label, "—", "%s", ms(created))
	}
}

// compliance creates a policy (which evaluates the tenant once), times
// EvaluateTenant, then adds forbidden apps to it and times it again.
func (b *bench) compliance() {
	enabled := true
	in := compliance.PolicyInput{Name: "Baseline", Rules: compliance.Rules{MinOSVersion: "17.4", PasscodeRequired: true, EncryptionRequired: true},
		// Failing devices are marked at once, so the API benchmark's
		// compliance filter has noncompliant devices to find.
		Ladder:  &compliance.Ladder{{Action: compliance.StepNotify}, {Action: compliance.StepMarkNoncompliant}},
		Enabled: &enabled}
	start := time.Now()
	p, err := b.fleet.Compliance.CreatePolicy(b.ctx, b.tenant, in, b.owner.ID, b.owner)
	check(err)
	b.add("compliance policy create + first evaluation", "—", "%s", ms(time.Since(start)))
	b.analyzeTables("after creating the policy")
	b.evaluate("compliance, min OS + passcode + encryption")

	in.Rules.ForbiddenApps = []string{"com.example.app007", "com.example.app013", "com.example.app150"}
	start = time.Now()
	_, err = b.fleet.Compliance.UpdatePolicy(b.ctx, b.tenant, p.ID, in, b.owner.ID, b.owner)
	check(err)
	b.add("compliance policy update (forbidden apps) + evaluation", "—", "%s", ms(time.Since(start)))
	b.evaluate("compliance, + forbidden_apps (reads app lists)")
}

func (b *bench) evaluate(label string) {
	var took []time.Duration
	var rates []float64
	n := 0
	for r := 0; r < *evaluations; r++ {
		res, err := b.fleet.Compliance.EvaluateTenant(b.ctx, b.tenant, nil)
		check(err)
		took = append(took, res.Took)
		rates = append(rates, float64(res.Devices)/res.Took.Seconds())
		n = res.Devices
	}
	lo, hi := rates[0], rates[0]
	for _, r := range rates {
		lo, hi = min(lo, r), max(hi, r)
	}
	counts := b.complianceCounts()
	fmt.Printf("%s: %d devices, %s, %.0f–%.0f devices/s; states %s\n", label, n, spread(took), lo, hi, counts)
	b.add(label, ">= 5,000 devices/s", "%.0f–%.0f devices/s (%s per run of %d)", lo, hi, spread(took), n)
}

// complianceCounts counts the fleet's compliance summaries, as a sanity
// check that the policy decided something.
func (b *bench) complianceCounts() string {
	counts := map[string]int{}
	q := store.DeviceQuery{Limit: 1000}
	for {
		page, err := b.st.Read().ManagedDevices().Search(b.ctx, b.tenant, q)
		check(err)
		for _, d := range page.Devices {
			counts[d.Compliance]++
		}
		if page.Next == (store.DeviceCursor{}) {
			break
		}
		q.After = page.Next
	}
	return fmt.Sprintf("compliant %d, noncompliant %d, in_grace %d, unknown %d", counts[store.ComplianceCompliant],
		counts[store.ComplianceNoncompliant], counts[compliance.InGrace], counts[store.ComplianceUnknown])
}
