package main

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/steward-mdm/steward/internal/api"
	"github.com/steward-mdm/steward/internal/device"
)

// deviceFilters are `device list`'s flags, named as the API's query
// parameters with dashes for underscores.
type deviceFilters struct {
	platform, ownership, state, compliance, group string
	lastSeenBefore, lastSeenAfter, osMin, osMax   string
	model, sort, cursor                           string
	limit                                         int
}

var deviceSortKeys = []string{"id", "last_seen", "enrolled", "os_version", "model"}

// query returns the filters as URL query parameters. It returns an error
// for a sort key or page size the server would refuse, so the mistake is
// explained before any request.
func (f deviceFilters) query() (url.Values, error) {
	q := url.Values{}
	for key, v := range map[string]string{
		"platform": f.platform, "ownership": f.ownership, "state": f.state, "compliance": f.compliance, "group": f.group,
		"last_seen_before": f.lastSeenBefore, "last_seen_after": f.lastSeenAfter, "os_min": f.osMin, "os_max": f.osMax,
		"model": f.model, "sort": f.sort, "cursor": f.cursor,
	} {
		if v = strings.TrimSpace(v); v != "" {
			q.Set(key, v)
		}
	}
	if s := strings.TrimPrefix(f.sort, "-"); f.sort != "" && !slices.Contains(deviceSortKeys, s) {
		return nil, fmt.Errorf("--sort must be %s, optionally prefixed with - for descending", joinOr(deviceSortKeys))
	}
	if f.limit < 1 || f.limit > 1000 {
		return nil, fmt.Errorf("--limit must be between 1 and 1000")
	}
	q.Set("limit", strconv.Itoa(f.limit))
	return q, nil
}

func newDeviceListCmd(r *remote) *cobra.Command {
	var f deviceFilters
	var all bool
	cmd := &cobra.Command{
		Use:   "list [filters]",
		Short: "List and search devices: filter, sort, page (or --all)",
		Long: "Without --all one page is printed and, when more follow, the --cursor for the next page is\n" +
			"shown on standard error. Ages such as 30d or 12h count back from now, e.g.\n" +
			"  steward device list --last-seen-before 30d --sort -last_seen --all",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q, err := f.query()
			if err != nil {
				return err
			}
			return r.call(cmd, func(a *apiCall) error {
				out, err := listDevices(a, q, all)
				if err != nil {
					return err
				}
				if err := printDevices(r, cmd, out); err != nil {
					return err
				}
				if out.NextCursor != "" {
					fmt.Fprintf(cmd.ErrOrStderr(), "More devices follow: add --cursor %s (or use --all).\n", out.NextCursor)
				}
				return nil
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.platform, "platform", "", "ios, ipados or macos")
	fl.StringVar(&f.ownership, "ownership", "", "corporate, personal, user_enrolled or shared")
	fl.StringVar(&f.state, "state", "", "pending, enrolled, retired, wiped or deprovisioned")
	fl.StringVar(&f.compliance, "compliance", "", "compliant, in_grace, noncompliant or unknown")
	fl.StringVar(&f.group, "group", "", "only members of this group ID")
	fl.StringVar(&f.lastSeenBefore, "last-seen-before", "", "last check-in before an RFC 3339 time or an age such as 30d")
	fl.StringVar(&f.lastSeenAfter, "last-seen-after", "", "last check-in after an RFC 3339 time or an age such as 12h")
	fl.StringVar(&f.osMin, "os-min", "", "lowest OS version, e.g. 17.4")
	fl.StringVar(&f.osMax, "os-max", "", "highest OS version, e.g. 17.9")
	fl.StringVar(&f.model, "model", "", "model name prefix, e.g. iPhone15")
	fl.StringVar(&f.sort, "sort", "id", "id, last_seen, enrolled, os_version or model; prefix - for descending")
	fl.StringVar(&f.cursor, "cursor", "", "continue from this cursor (printed after a page)")
	fl.IntVar(&f.limit, "limit", 100, "devices per page, 1 to 1000")
	fl.BoolVar(&all, "all", false, "follow the cursors and print every matching device")
	return cmd
}

func newDeviceLookupCmd(r *remote) *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   "lookup SERIAL [--reason TEXT]",
		Short: "Find devices by serial number",
		Long: "Devices whose policy masks their serial number (personally owned ones, by default) are found only\n" +
			"with --reason and the privacy.reveal permission; each one found so is audited and written to its\n" +
			"person's access record, as a reveal is.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return r.call(cmd, func(a *apiCall) error {
				var out api.DeviceListView
				in := api.SerialLookupRequest{Serial: args[0], Reason: reason}
				if err := a.do("POST", tenantPath(a.tenant, "/devices/lookup"), in, &out); err != nil {
					return err
				}
				if out.Note != "" {
					fmt.Fprintf(cmd.ErrOrStderr(), "Note: %s.\n", out.Note)
				}
				return printDevices(r, cmd, api.List[api.DeviceView]{Items: out.Items})
			})
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why you look for a device whose serial its policy masks (10 to 500 characters)")
	return cmd
}

// listDevices fetches one page, or with all every page, reporting the count
// on standard error as pages arrive.
func listDevices(a *apiCall, q url.Values, all bool) (api.List[api.DeviceView], error) {
	var out api.List[api.DeviceView]
	stderr := a.cmd.ErrOrStderr()
	for pages := 1; ; pages++ {
		var page api.List[api.DeviceView]
		if err := a.do("GET", tenantPath(a.tenant, "/devices?"+q.Encode()), nil, &page); err != nil {
			return out, err
		}
		out.Items = append(out.Items, page.Items...)
		out.NextCursor = page.NextCursor
		if !all || page.NextCursor == "" {
			if pages > 1 {
				fmt.Fprintf(stderr, "Fetched %d devices in %d pages.\n", len(out.Items), pages)
			}
			return out, nil
		}
		if cur := page.NextCursor; cur == q.Get("cursor") {
			return out, fmt.Errorf("the server returned the same cursor twice; stopping after %d devices", len(out.Items))
		}
		fmt.Fprintf(stderr, "Fetched %d devices…\n", len(out.Items))
		q.Set("cursor", page.NextCursor)
	}
}

func printDevices(r *remote, cmd *cobra.Command, out api.List[api.DeviceView]) error {
	return r.print(cmd.OutOrStdout(), out, []string{"ID", "PLATFORM", "OWNERSHIP", "STATE", "COMPLIANCE", "OS", "MODEL", "LAST SEEN", "PERSON"}, func(i int) []string {
		d := out.Items[i]
		return []string{d.ID, d.Platform, d.Ownership, d.State, d.Compliance, d.OSVersion, d.Model, formatWhen(d.LastSeenAt), d.SubjectID}
	}, len(out.Items))
}

func formatWhen(t *time.Time) string {
	if t == nil {
		return "never"
	}
	return t.Local().Format("2006-01-02 15:04")
}

func newDeviceSettingsCmd(r *remote) *cobra.Command {
	cmd := &cobra.Command{Use: "device-settings", Short: "Stale-device handling and the approval rules for bulk actions"}
	show := &cobra.Command{
		Use: "show", Short: "Show the device management settings of --tenant", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return r.call(cmd, func(a *apiCall) error {
				var s device.Settings
				if err := a.do("GET", tenantPath(a.tenant, "/device-settings"), nil, &s); err != nil {
					return err
				}
				return printDeviceSettings(r, cmd, s)
			})
		},
	}
	var in device.Settings
	set := &cobra.Command{
		Use:   "set [--stale-after-days N] [--retire-stale-after-days N] [--bulk-approval-threshold N] [--approval-hours N]",
		Short: "Change some device management settings; the others stay",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if mergeSettings(cmd.Flags().Changed, &device.Settings{}, in) == 0 {
				return fmt.Errorf("nothing to change: give at least one setting (see --help)")
			}
			return r.call(cmd, func(a *apiCall) error {
				path := tenantPath(a.tenant, "/device-settings")
				var s device.Settings
				if err := a.do("GET", path, nil, &s); err != nil {
					return err
				}
				mergeSettings(cmd.Flags().Changed, &s, in)
				var out device.Settings
				if err := a.do("PUT", path, s, &out); err != nil {
					return err
				}
				return printDeviceSettings(r, cmd, out)
			})
		},
	}
	set.Flags().IntVar(&in.StaleAfterDays, "stale-after-days", 0, "flag a device stale after this many days without a check-in (1 to 3650)")
	set.Flags().IntVar(&in.RetireStaleAfterDays, "retire-stale-after-days", 0, "retire a stale device after this many more days (0: never)")
	set.Flags().IntVar(&in.BulkApprovalThreshold, "bulk-approval-threshold", 0, "actions on more devices than this need a second admin")
	set.Flags().IntVar(&in.ApprovalHours, "approval-hours", 0, "how long a request waits for its second admin")
	cmd.AddCommand(show, set)
	return cmd
}

// mergeSettings copies the settings whose flags were given (changed reports
// that) from in to s and returns how many it copied.
func mergeSettings(changed func(flag string) bool, s *device.Settings, in device.Settings) int {
	n := 0
	for flag, pair := range map[string][2]*int{
		"stale-after-days":        {&s.StaleAfterDays, &in.StaleAfterDays},
		"retire-stale-after-days": {&s.RetireStaleAfterDays, &in.RetireStaleAfterDays},
		"bulk-approval-threshold": {&s.BulkApprovalThreshold, &in.BulkApprovalThreshold},
		"approval-hours":          {&s.ApprovalHours, &in.ApprovalHours},
	} {
		if changed(flag) {
			*pair[0] = *pair[1]
			n++
		}
	}
	return n
}

func printDeviceSettings(r *remote, cmd *cobra.Command, s device.Settings) error {
	retire := "never"
	if s.RetireStaleAfterDays > 0 {
		retire = fmt.Sprintf("%d days after being flagged", s.RetireStaleAfterDays)
	}
	return keyValues(r, cmd, s, [][2]string{
		{"stale after", fmt.Sprintf("%d days without a check-in", s.StaleAfterDays)},
		{"retire stale devices", retire},
		{"bulk approval threshold", fmt.Sprintf("more than %d devices need a second admin", s.BulkApprovalThreshold)},
		{"approval wait", fmt.Sprintf("%d hours", s.ApprovalHours)},
	})
}
