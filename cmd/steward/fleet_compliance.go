package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/steward-mdm/steward/internal/api"
	"github.com/steward-mdm/steward/internal/compliance"
)

// policyFlags are the flags shared by `policy create` and `policy update`.
type policyFlags struct {
	name, platform, ownership, rulesFile, ladderFile string
	disabled                                         bool
}

func (p *policyFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&p.name, "name", "", "the policy's name")
	cmd.Flags().StringVar(&p.platform, "platform", "", "ios, ipados or macos (default: every platform)")
	cmd.Flags().StringVar(&p.ownership, "ownership", "", "corporate, personal, user_enrolled or shared (default: every class)")
	cmd.Flags().StringVar(&p.rulesFile, "rules-file", "", `the rules as JSON, e.g. {"min_os_version":"17.4","passcode_required":true} (min_os_version needs --platform)`)
	cmd.Flags().StringVar(&p.ladderFile, "ladder-file", "", `the response ladder as JSON, e.g. [{"action":"notify","after_hours":0}] (default: the server's)`)
	cmd.Flags().BoolVar(&p.disabled, "disabled", false, "store the policy without enforcing it")
}

// apply overlays the flags that were given onto in, reading the files.
// Keys the CLI does not know are refused, so a typo cannot silently weaken
// a rule.
func (p *policyFlags) apply(cmd *cobra.Command, in *compliance.PolicyInput) error {
	f := cmd.Flags()
	if f.Changed("name") {
		in.Name = p.name
	}
	if f.Changed("platform") {
		in.Platform = p.platform
	}
	if f.Changed("ownership") {
		in.Ownership = p.ownership
	}
	if p.rulesFile != "" {
		raw, err := readJSONFile(cmd, "rules-file", p.rulesFile)
		if err != nil {
			return err
		}
		in.Rules = compliance.Rules{}
		if err := decodeStrict("rules-file", raw, &in.Rules); err != nil {
			return err
		}
	}
	if p.ladderFile != "" {
		raw, err := readJSONFile(cmd, "ladder-file", p.ladderFile)
		if err != nil {
			return err
		}
		var l compliance.Ladder
		if err := decodeStrict("ladder-file", raw, &l); err != nil {
			return err
		}
		in.Ladder = &l
	}
	if f.Changed("disabled") {
		enabled := !p.disabled
		in.Enabled = &enabled
	}
	return nil
}

func newComplianceCmd(r *remote) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "compliance",
		Short: "Compliance policies, evaluation and their graduated responses",
		Long: "A policy states what a device must meet (OS version, passcode, encryption…) and a ladder of\n" +
			"responses when it does not. See a device's standing with `steward device compliance`.",
	}
	policy := &cobra.Command{Use: "policy", Short: "Create, list, show, update and delete compliance policies"}
	policy.AddCommand(newPolicyCreateCmd(r), newPolicyListCmd(r), newPolicyShowCmd(r), newPolicyUpdateCmd(r), newPolicyDeleteCmd(r))
	evaluate := &cobra.Command{
		Use: "evaluate", Short: "Evaluate every enrolled device against the policies now", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return r.call(cmd, func(a *apiCall) error {
				var v compliance.EvaluationResult
				if err := a.do("POST", tenantPath(a.tenant, "/compliance/evaluate"), nil, &v); err != nil {
					return err
				}
				if r.json {
					return printJSON(cmd.OutOrStdout(), v)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "Evaluated %d devices.\n", v.Devices)
				return nil
			})
		},
	}
	cmd.AddCommand(policy, evaluate)
	return cmd
}

func printPolicies(r *remote, cmd *cobra.Command, out api.List[api.PolicyView]) error {
	return r.print(cmd.OutOrStdout(), out, []string{"ID", "NAME", "PLATFORM", "OWNERSHIP", "ENABLED", "RULES"}, func(i int) []string {
		p := out.Items[i]
		return []string{p.ID, p.Name, orAll(p.Platform), orAll(p.Ownership), yesNo(p.Enabled), string(p.Rules)}
	}, len(out.Items))
}

func orAll(s string) string {
	if s == "" {
		return "all"
	}
	return s
}

func newPolicyCreateCmd(r *remote) *cobra.Command {
	var pf policyFlags
	cmd := &cobra.Command{
		Use:   "create --name NAME --rules-file FILE [--platform P] [--ownership O] [--ladder-file FILE]",
		Short: "Create a compliance policy; devices are evaluated at once",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if pf.name == "" || pf.rulesFile == "" {
				return errors.New("--name and --rules-file are required")
			}
			var in compliance.PolicyInput
			if err := pf.apply(cmd, &in); err != nil {
				return err
			}
			return r.call(cmd, func(a *apiCall) error {
				var p api.PolicyView
				if err := a.do("POST", tenantPath(a.tenant, "/compliance/policies"), in, &p); err != nil {
					return err
				}
				return printPolicies(r, cmd, api.List[api.PolicyView]{Items: []api.PolicyView{p}})
			})
		},
	}
	pf.register(cmd)
	return cmd
}

func newPolicyListCmd(r *remote) *cobra.Command {
	return &cobra.Command{
		Use: "list", Short: "List compliance policies", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return r.call(cmd, func(a *apiCall) error {
				out, err := collect[api.PolicyView](a, tenantPath(a.tenant, "/compliance/policies"))
				if err != nil {
					return err
				}
				return printPolicies(r, cmd, out)
			})
		},
	}
}

func newPolicyShowCmd(r *remote) *cobra.Command {
	return &cobra.Command{
		Use: "show POLICY-ID", Short: "A policy, its rules, ladder and how many devices stand where", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return r.call(cmd, func(a *apiCall) error {
				var p api.PolicyView
				if err := a.do("GET", tenantPath(a.tenant, "/compliance/policies/"+pathSegment(args[0])), nil, &p); err != nil {
					return err
				}
				states := make([]string, 0, len(p.Standings))
				for s, n := range p.Standings {
					states = append(states, fmt.Sprintf("%s %d", s, n))
				}
				sort.Strings(states)
				return keyValues(r, cmd, p, [][2]string{{"id", p.ID}, {"name", p.Name}, {"platform", orAll(p.Platform)},
					{"ownership", orAll(p.Ownership)}, {"enabled", yesNo(p.Enabled)}, {"rules", string(p.Rules)},
					{"ladder", string(p.Ladder)}, {"devices", strings.Join(states, ", ")},
					{"updated", p.UpdatedAt.Format("2006-01-02 15:04")}})
			})
		},
	}
}

func newPolicyUpdateCmd(r *remote) *cobra.Command {
	var pf policyFlags
	cmd := &cobra.Command{
		Use:   "update POLICY-ID [--name] [--platform] [--ownership] [--rules-file] [--ladder-file] [--disabled=false]",
		Short: "Change a policy; what you do not give stays; devices are re-evaluated",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return r.call(cmd, func(a *apiCall) error {
				path := tenantPath(a.tenant, "/compliance/policies/"+pathSegment(args[0]))
				var cur api.PolicyView
				if err := a.do("GET", path, nil, &cur); err != nil {
					return err
				}
				in, err := policyInputOf(cur)
				if err != nil {
					return err
				}
				if err := pf.apply(cmd, &in); err != nil {
					return err
				}
				var p api.PolicyView
				if err := a.do("PUT", path, in, &p); err != nil {
					return err
				}
				return printPolicies(r, cmd, api.List[api.PolicyView]{Items: []api.PolicyView{p}})
			})
		},
	}
	pf.register(cmd)
	return cmd
}

// policyInputOf turns a stored policy back into the input that recreates it.
func policyInputOf(p api.PolicyView) (compliance.PolicyInput, error) {
	in := compliance.PolicyInput{Name: p.Name, Platform: p.Platform, Ownership: p.Ownership, Enabled: &p.Enabled}
	if len(p.Rules) > 0 {
		if err := json.Unmarshal(p.Rules, &in.Rules); err != nil {
			return in, fmt.Errorf("the server sent rules this CLI cannot read (is it older than the server?): %w", err)
		}
	}
	if len(p.Ladder) > 0 && string(p.Ladder) != "null" {
		var l compliance.Ladder
		if err := json.Unmarshal(p.Ladder, &l); err != nil {
			return in, fmt.Errorf("the server sent a ladder this CLI cannot read (is it older than the server?): %w", err)
		}
		in.Ladder = &l
	}
	return in, nil
}

func newPolicyDeleteCmd(r *remote) *cobra.Command {
	return &cobra.Command{
		Use: "delete POLICY-ID", Short: "Delete a compliance policy", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return r.call(cmd, func(a *apiCall) error {
				if err := a.do("DELETE", tenantPath(a.tenant, "/compliance/policies/"+pathSegment(args[0])), nil, nil); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "Deleted policy %s.\n", args[0])
				return nil
			})
		},
	}
}

func newDeviceComplianceCmd(r *remote) *cobra.Command {
	return &cobra.Command{
		Use: "compliance DEVICE-ID", Short: "A device's standing under each policy, its violations and history", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return r.call(cmd, func(a *apiCall) error {
				var v api.DeviceComplianceView
				if err := a.do("GET", tenantPath(a.tenant, "/devices/"+pathSegment(args[0])+"/compliance"), nil, &v); err != nil {
					return err
				}
				if !r.json {
					fmt.Fprintf(cmd.OutOrStdout(), "Overall: %s\n\n", v.Compliance)
				}
				return r.print(cmd.OutOrStdout(), v, []string{"POLICY", "STATE", "SINCE", "STEPS TAKEN", "NEXT STEP", "VIOLATIONS"}, func(i int) []string {
					s := v.Standings[i]
					next := ""
					if s.NextStepAt != nil {
						next = s.NextStepAt.Format("2006-01-02 15:04")
					}
					violations, _ := json.Marshal(s.Violations)
					return []string{s.PolicyID, s.State, s.Since.Format("2006-01-02 15:04"), fmt.Sprint(s.StepsTaken), next, string(violations)}
				}, len(v.Standings))
			})
		},
	}
}

func newDeviceAccessTokenCmd(r *remote) *cobra.Command {
	var ttlHours int
	cmd := &cobra.Command{
		Use:   "access-token DEVICE-ID",
		Short: "Mint a conditional-access token for a device (shown once)",
		Long: "The token lets the device prove itself to the access check (header X-Steward-Device-Token)\n" +
			"when it cannot present its certificate. It is printed once; install it on the device.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if ttlHours < 0 {
				return errors.New("--ttl-hours must be positive")
			}
			return r.call(cmd, func(a *apiCall) error {
				var v api.AccessTokenView
				if err := a.do("POST", tenantPath(a.tenant, "/devices/"+pathSegment(args[0])+"/access-token"), api.AccessTokenRequest{TTLHours: ttlHours}, &v); err != nil {
					return err
				}
				if r.json {
					return printJSON(cmd.OutOrStdout(), v)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "Device access token (valid until %s, shown once):\n%s\n", v.ExpiresAt.Format(time.RFC1123), v.Token)
				return nil
			})
		},
	}
	cmd.Flags().IntVar(&ttlHours, "ttl-hours", 0, "lifetime in hours (default: the server's, 90 days)")
	return cmd
}
