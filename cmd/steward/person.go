package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/steward-mdm/steward/internal/api"
	"github.com/steward-mdm/steward/internal/privacy"
)

func newPersonCmd(r *remote) *cobra.Command {
	cmd := &cobra.Command{Use: "person", Short: "People whose data Steward holds: register, export, erase, access record, consents"}
	var in api.SubjectRequest
	create := &cobra.Command{
		Use: "create EMAIL", Short: "Register a person (their e-mail is stored encrypted, searchable by blind index)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			in.Email = args[0]
			return r.call(cmd, func(a *apiCall) error {
				var v api.SubjectView
				if err := a.do("POST", tenantPath(a.tenant, "/subjects"), in, &v); err != nil {
					return err
				}
				return printSubjects(r, cmd, api.List[api.SubjectView]{Items: []api.SubjectView{v}})
			})
		},
	}
	create.Flags().StringVar(&in.Name, "name", "", "full name")
	create.Flags().StringVar(&in.Department, "department", "", "department")
	create.Flags().StringVar(&in.Locale, "locale", "en", "language for notices and mail")
	create.Flags().StringVar(&in.ManagedAppleID, "managed-apple-id", "", "the person's Managed Apple Account, only when it is not their e-mail")
	var name, department, appleID string
	update := &cobra.Command{
		Use: "update PERSON-ID", Short: "Change a person's name, department or Managed Apple Account (their e-mail stays)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var up api.SubjectUpdateRequest
			for flag, dst := range map[string]**string{"name": &up.Name, "department": &up.Department, "managed-apple-id": &up.ManagedAppleID} {
				if cmd.Flags().Changed(flag) {
					v, _ := cmd.Flags().GetString(flag)
					*dst = &v
				}
			}
			if up == (api.SubjectUpdateRequest{}) {
				return fmt.Errorf("nothing to change: give --name, --department or --managed-apple-id")
			}
			return r.call(cmd, func(a *apiCall) error {
				var v api.SubjectView
				if err := a.do("PATCH", tenantPath(a.tenant, "/subjects/"+args[0]), up, &v); err != nil {
					return err
				}
				return printSubjects(r, cmd, api.List[api.SubjectView]{Items: []api.SubjectView{v}})
			})
		},
	}
	update.Flags().StringVar(&name, "name", "", "full name")
	update.Flags().StringVar(&department, "department", "", "department")
	update.Flags().StringVar(&appleID, "managed-apple-id", "", "the Managed Apple Account; empty: the e-mail is the account")
	list := &cobra.Command{
		Use: "list", Short: "List people (pseudonyms and state only)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return r.call(cmd, func(a *apiCall) error {
				out, err := collect[api.SubjectView](a, tenantPath(a.tenant, "/subjects"))
				if err != nil {
					return err
				}
				return printSubjects(r, cmd, out)
			})
		},
	}
	var out, exportReason string
	export := &cobra.Command{
		Use:   "export PERSON-ID",
		Short: "Export everything held about a person (GDPR Art 15/20) as an AES-256 encrypted ZIP",
		Long: "Writes the archive to --out and prints its password once. Hand the password to the person by\n" +
			"another channel than the file. It opens with 7-Zip (Windows), Keka or The Unarchiver (macOS) and\n" +
			"File Roller or `7z x` (Linux); inside are summary.html (readable) and data.json (portable).",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return r.call(cmd, func(a *apiCall) error {
				var v api.ExportView
				if err := a.do("POST", tenantPath(a.tenant, "/subjects/"+args[0]+"/export"), api.ReasonRequest{Reason: exportReason}, &v); err != nil {
					return err
				}
				path := out
				if path == "" {
					path = v.FileName
				}
				if err := writeOut(cmd, path, v.Archive, 0o600); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "Archive password (shown once): %s\n", v.Password)
				return nil
			})
		},
	}
	export.Flags().StringVar(&out, "out", "", "archive file (default: the name the server suggests)")
	export.Flags().StringVar(&exportReason, "reason", "", "why (required, audited, in the person's access record: the archive holds hidden values)")
	var reason, certOut string
	erase := &cobra.Command{
		Use:   "erase PERSON-ID",
		Short: "Erase a person (GDPR Art 17): their keys are destroyed, so backups become unreadable too",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return r.call(cmd, func(a *apiCall) error {
				var v api.CertificateView
				if err := a.do("POST", tenantPath(a.tenant, "/subjects/"+args[0]+"/erase"), api.ReasonRequest{Reason: reason}, &v); err != nil {
					return err
				}
				return printCertificate(cmd, v, certOut)
			})
		},
	}
	erase.Flags().StringVar(&reason, "reason", "", "why (required, audited, on the certificate)")
	erase.Flags().StringVar(&certOut, "certificate", "", "save the signed deletion certificate to this file")
	access := &cobra.Command{
		Use: "access-record PERSON-ID", Short: "Who read this person's data, when and why", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return r.call(cmd, func(a *apiCall) error {
				recs, err := collect[api.AccessRecordView](a, tenantPath(a.tenant, "/subjects/"+args[0]+"/access-record"))
				if err != nil {
					return err
				}
				return printAccessRecord(r, cmd, recs)
			})
		},
	}
	consents := &cobra.Command{
		Use: "consents PERSON-ID", Short: "A person's consents and which need renewing", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return r.call(cmd, func(a *apiCall) error {
				var v api.ConsentStateView
				if err := a.do("GET", tenantPath(a.tenant, "/subjects/"+args[0]+"/consents"), nil, &v); err != nil {
					return err
				}
				err := r.print(cmd.OutOrStdout(), v, []string{"ID", "OWNERSHIP", "VERSION", "LANGUAGE", "METHOD", "SHOWN", "SUMMARY SHA-256", "ACCEPTED", "WITHDRAWN"}, func(i int) []string {
					c := v.Consents[i]
					w := ""
					if c.WithdrawnAt != nil {
						w = c.WithdrawnAt.Format("2006-01-02")
					}
					return []string{c.ID, c.Ownership, fmt.Sprint(c.NoticeVersion), c.Language, c.Method, c.Shown, c.SummarySHA256,
						c.AcceptedAt.Format("2006-01-02"), w}
				}, len(v.Consents))
				if err == nil && !r.json && len(v.Outdated) > 0 {
					fmt.Fprintf(cmd.OutOrStdout(), "Needs to accept the current notice for: %v\n", v.Outdated)
				}
				return err
			})
		},
	}
	var ttlHours int
	var notify bool
	portalToken := &cobra.Command{
		Use: "portal-token PERSON-ID", Short: "Give a person access to the employee portal (shown once; --notify mails it)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return r.call(cmd, func(a *apiCall) error {
				var v api.PortalTokenView
				if err := a.do("POST", tenantPath(a.tenant, "/subjects/"+args[0]+"/portal-tokens"), api.PortalTokenRequest{TTLHours: ttlHours, Notify: notify}, &v); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "Portal access key (valid until %s, shown once):\n%s\n", v.ExpiresAt.Format(time.RFC1123), v.Token)
				return nil
			})
		},
	}
	portalToken.Flags().IntVar(&ttlHours, "ttl-hours", 24*30, "lifetime in hours (1 to 2160)")
	portalToken.Flags().BoolVar(&notify, "notify", false, "also e-mail the key to the person")
	cmd.AddCommand(create, update, list, export, erase, access, consents, portalToken)
	return cmd
}

func printSubjects(r *remote, cmd *cobra.Command, out api.List[api.SubjectView]) error {
	return r.print(cmd.OutOrStdout(), out, []string{"ID", "PSEUDONYM", "STATE", "CREATED"}, func(i int) []string {
		s := out.Items[i]
		return []string{s.ID, s.Pseudonym, s.State, s.CreatedAt.Format("2006-01-02")}
	}, len(out.Items))
}

func printAccessRecord(r *remote, cmd *cobra.Command, recs api.List[api.AccessRecordView]) error {
	return r.print(cmd.OutOrStdout(), recs, []string{"WHEN", "WHO", "ACTION", "FIELDS", "REASON"}, func(i int) []string {
		x := recs.Items[i]
		return []string{x.At.Format("2006-01-02 15:04"), x.Actor, x.Action, strings.Join(x.Fields, ","), x.Reason}
	}, len(recs.Items))
}

func printCertificate(cmd *cobra.Command, v api.CertificateView, path string) error {
	var c privacy.Certificate
	if err := json.Unmarshal([]byte(v.Certificate), &c); err != nil {
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "Erased. Certificate %s: %d keys destroyed, rows removed %v.\n", c.ID, len(c.KeysDestroyed), c.RowsRemoved)
	if path == "" {
		return nil
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return writeOut(cmd, path, append(b, '\n'), 0o644)
}

func newDeviceCmd(r *remote) *cobra.Command {
	cmd := &cobra.Command{Use: "device", Short: "Devices: search, show (masked), reveal with a reason, compliance, profiles, deprovision"}
	var in api.DeviceRequest
	register := &cobra.Command{
		Use: "register", Short: "Pre-register a device", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return r.call(cmd, func(a *apiCall) error {
				var d api.DeviceView
				if err := a.do("POST", tenantPath(a.tenant, "/devices"), in, &d); err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), d.ID)
				return nil
			})
		},
	}
	register.Flags().StringVar(&in.Ownership, "ownership", "corporate", "corporate, personal, user_enrolled or shared")
	register.Flags().StringVar(&in.Platform, "platform", "", "ios, ipados, macos, windows, linux or android")
	register.Flags().StringVar(&in.SubjectID, "person", "", "ID of the person who uses it")
	show := &cobra.Command{
		Use: "show DEVICE-ID", Short: "A device and its inventory (hidden fields masked)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return r.call(cmd, func(a *apiCall) error {
				var v api.DeviceDetailView
				if err := a.do("GET", tenantPath(a.tenant, "/devices/"+args[0]), nil, &v); err != nil {
					return err
				}
				return r.print(cmd.OutOrStdout(), v, []string{"FIELD", "CATEGORY", "VALUE", "COLLECTED"}, func(i int) []string {
					f := v.Fields[i]
					val := string(f.Value)
					switch {
					case f.Masked:
						val = "•••• (hidden; steward device reveal)"
					case f.Unreadable != "":
						val = "(" + f.Unreadable + ")"
					}
					return []string{f.Field, string(f.Category), val, f.CollectedAt.Format("2006-01-02 15:04")}
				}, len(v.Fields))
			})
		},
	}
	var reveal api.RevealRequest
	revealCmd := &cobra.Command{
		Use: "reveal DEVICE-ID", Short: "See hidden fields for a limited time; needs a reason, audited, in the person's access record", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return r.call(cmd, func(a *apiCall) error {
				var v api.RevealView
				if err := a.do("POST", tenantPath(a.tenant, "/devices/"+args[0]+"/reveal"), reveal, &v); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "Revealed %v until %s; run `steward device show %s`.\n", v.Fields, v.ExpiresAt.Format("15:04 MST"), args[0])
				return nil
			})
		},
	}
	revealCmd.Flags().StringSliceVar(&reveal.Fields, "field", nil, "field key(s) to reveal")
	revealCmd.Flags().StringVar(&reveal.Reason, "reason", "", "why (required)")
	revealCmd.Flags().StringVar(&reveal.Duration, "duration", "15m", "how long, at most 1h")
	var reason, certOut string
	deprovision := &cobra.Command{
		Use: "deprovision DEVICE-ID", Short: "Erase a device's personal data (keys destroyed) and retire it", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return r.call(cmd, func(a *apiCall) error {
				var v api.CertificateView
				if err := a.do("POST", tenantPath(a.tenant, "/devices/"+args[0]+"/deprovision"), api.ReasonRequest{Reason: reason}, &v); err != nil {
					return err
				}
				return printCertificate(cmd, v, certOut)
			})
		},
	}
	deprovision.Flags().StringVar(&reason, "reason", "", "why (required, audited)")
	deprovision.Flags().StringVar(&certOut, "certificate", "", "save the signed deletion certificate to this file")
	cmd.AddCommand(register, show, revealCmd, deprovision)
	return cmd
}
