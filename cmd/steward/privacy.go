package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/steward-mdm/steward/internal/api"
	"github.com/steward-mdm/steward/internal/audit"
	"github.com/steward-mdm/steward/internal/privacy"
)

func newPrivacyCmd(r *remote) *cobra.Command {
	cmd := &cobra.Command{Use: "privacy", Short: "Data catalogue, collection policy, retention, notices, outbound flows, record of processing"}
	catalogue := &cobra.Command{
		Use: "catalogue", Short: "Every field Steward can store, with category, personal flag and legal basis", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return r.call(cmd, func(a *apiCall) error {
				var v api.CatalogueView
				if err := a.do("GET", "/api/v1/privacy/catalogue", nil, &v); err != nil {
					return err
				}
				return r.print(cmd.OutOrStdout(), v, []string{"FIELD", "CATEGORY", "PERSONAL", "PURPOSE"}, func(i int) []string {
					f := v.Fields[i]
					return []string{f.Key, string(f.Category), yesNo(f.Personal), f.Purpose}
				}, len(v.Fields))
			})
		},
	}
	var format, out string
	record := &cobra.Command{
		Use: "record", Short: "The record of processing (GDPR Art 30) for --tenant", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return r.call(cmd, func(a *apiCall) error {
				resp, err := a.c.Raw(cmd.Context(), "GET", tenantPath(a.tenant, "/privacy/record?format="+url.QueryEscape(format)), nil)
				if err != nil {
					return err
				}
				defer resp.Body.Close()
				body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
				if err != nil {
					return err
				}
				return writeOut(cmd, out, body, 0o644)
			})
		},
	}
	record.Flags().StringVar(&format, "format", "md", "md, html or json")
	record.Flags().StringVar(&out, "out", "", "write to this file instead of standard output")

	settings := &cobra.Command{
		Use: "settings", Short: "Show the collection policy, retention, outbound flows and notice versions", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return r.call(cmd, func(a *apiCall) error {
				var v api.PrivacySettingsView
				if err := a.do("GET", tenantPath(a.tenant, "/privacy/settings"), nil, &v); err != nil {
					return err
				}
				return printPolicy(r, cmd, v)
			})
		},
	}
	cmd.AddCommand(catalogue, record, settings, newPolicyCmd(r), newApprovalCmds(r)[0], newApprovalCmds(r)[1],
		newRetentionCmd(r), newFlowCmd(r), newNoticeCmd(r), newVerifyCertificateCmd(r))
	return cmd
}

func printPolicy(r *remote, cmd *cobra.Command, v api.PrivacySettingsView) error {
	if r.json {
		return r.print(cmd.OutOrStdout(), v, nil, nil, 0)
	}
	cats := privacy.Categories
	err := r.print(cmd.OutOrStdout(), v, []string{"CATEGORY", "CORPORATE", "PERSONAL", "USER-ENROLLED", "SHARED", "RETENTION"}, func(i int) []string {
		c := cats[i].Category
		days := "while enrolled"
		if d := v.RetentionDays[c]; d > 0 {
			days = strconv.Itoa(d) + " days"
		}
		return []string{string(c), string(v.Policy.Mode(privacy.Corporate, c)), string(v.Policy.Mode(privacy.Personal, c)),
			string(v.Policy.Mode(privacy.UserEnrolled, c)), string(v.Policy.Mode(privacy.Shared, c)), days}
	}, len(cats))
	if err != nil {
		return err
	}
	w := cmd.OutOrStdout()
	fmt.Fprintf(w, "\nFull wipe: corporate %s, personal %s, user-enrolled %s, shared %s\n", yesNo(v.Policy[privacy.Corporate].FullWipe),
		yesNo(v.Policy[privacy.Personal].FullWipe), yesNo(v.Policy[privacy.UserEnrolled].FullWipe), yesNo(v.Policy[privacy.Shared].FullWipe))
	fmt.Fprint(w, "Outbound flows:")
	for _, f := range privacy.Flows {
		fmt.Fprintf(w, " %s=%s", f.Flow, onOff(v.Flows[f.Flow].Enabled))
	}
	fmt.Fprint(w, "\nNotice versions:")
	for _, o := range privacy.Ownerships {
		fmt.Fprintf(w, " %s=%d", o, v.NoticeVersions[o])
	}
	fmt.Fprintln(w)
	return nil
}

func newPolicyCmd(r *remote) *cobra.Command {
	var ownership, category, mode, reason, fullWipe string
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Change what is collected for an ownership class (a widening waits for a second admin)",
		Long: "Set a category's mode (show, hide or none) for an ownership class, or allow/forbid full wipe.\n" +
			"Narrowing applies at once and deletes values no longer allowed; widening creates an approval\n" +
			"request that another admin decides with `steward privacy approve`.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ch := privacy.Change{Ownership: privacy.Ownership(ownership), Category: privacy.Category(category), Mode: privacy.Mode(mode)}
			if fullWipe != "" {
				b, err := strconv.ParseBool(fullWipe)
				if err != nil {
					return fmt.Errorf("--full-wipe must be true or false")
				}
				ch.FullWipe = &b
			}
			return r.call(cmd, func(a *apiCall) error {
				var v api.PolicyChangeView
				if err := a.do("POST", tenantPath(a.tenant, "/privacy/policy-changes"), api.PolicyChangeRequest{Changes: []privacy.Change{ch}, Reason: reason}, &v); err != nil {
					return err
				}
				if r.json {
					return r.print(cmd.OutOrStdout(), v, nil, nil, 0)
				}
				if v.Applied {
					fmt.Fprintf(cmd.OutOrStdout(), "Applied; %d stored values that are no longer allowed were deleted.\n", v.Purged)
				} else {
					fmt.Fprintf(cmd.OutOrStdout(), "This widens collection: approval %s waits for a second admin until %s.\n", v.Approval.ID, v.Approval.ExpiresAt.Format("2006-01-02 15:04 MST"))
				}
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&ownership, "ownership", "", "corporate, personal, user_enrolled or shared")
	cmd.Flags().StringVar(&category, "category", "", "category (see 'steward privacy catalogue')")
	cmd.Flags().StringVar(&mode, "mode", "", "show, hide or none")
	cmd.Flags().StringVar(&fullWipe, "full-wipe", "", "true or false: allow erasing the whole device")
	cmd.Flags().StringVar(&reason, "reason", "", "why (required, audited)")
	return cmd
}

func newApprovalCmds(r *remote) []*cobra.Command {
	list := &cobra.Command{
		Use: "approvals", Short: "Changes waiting for a second admin", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return r.call(cmd, func(a *apiCall) error {
				out, err := collect[api.ApprovalView](a, tenantPath(a.tenant, "/approvals"))
				if err != nil {
					return err
				}
				return r.print(cmd.OutOrStdout(), out, []string{"ID", "STATE", "REQUESTED BY", "EXPIRES", "CHANGE"}, func(i int) []string {
					x := out.Items[i]
					return []string{x.ID, x.State, x.RequestedBy, x.ExpiresAt.Format("2006-01-02 15:04"), string(x.Payload)}
				}, len(out.Items))
			})
		},
	}
	var reject bool
	var comment string
	decide := &cobra.Command{
		Use: "approve APPROVAL-ID", Short: "Approve (or --reject) another admin's change", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return r.call(cmd, func(a *apiCall) error {
				var v api.PolicyChangeView
				if err := a.do("POST", tenantPath(a.tenant, "/approvals/"+args[0]+"/decision"), api.DecisionRequest{Approve: !reject, Comment: comment}, &v); err != nil {
					return err
				}
				word := "Approved and applied"
				if reject {
					word = "Rejected"
				}
				fmt.Fprintln(cmd.OutOrStdout(), word+".")
				return nil
			})
		},
	}
	decide.Flags().BoolVar(&reject, "reject", false, "reject instead of approving")
	decide.Flags().StringVar(&comment, "comment", "", "a note for the audit log")
	return []*cobra.Command{list, decide}
}

func newRetentionCmd(r *remote) *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use: "retention CATEGORY=DAYS...", Short: "Set how long a category's values are kept (a longer period waits for a second admin)", Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			days := map[privacy.Category]int{}
			for _, a := range args {
				k, v, ok := strings.Cut(a, "=")
				n, err := strconv.Atoi(v)
				if !ok || err != nil {
					return fmt.Errorf("%q: want CATEGORY=DAYS", a)
				}
				days[privacy.Category(k)] = n
			}
			return r.call(cmd, func(a *apiCall) error {
				var v api.RetentionChangeView
				if err := a.do("PUT", tenantPath(a.tenant, "/privacy/retention"), api.RetentionRequest{RetentionDays: days, Reason: reason}, &v); err != nil {
					return err
				}
				if v.Approval != nil {
					if r.json {
						return r.print(cmd.OutOrStdout(), v, nil, nil, 0)
					}
					fmt.Fprintf(cmd.OutOrStdout(), "This keeps data longer: approval %s waits for a second admin until %s.\n", v.Approval.ID, v.Approval.ExpiresAt.Format("2006-01-02 15:04 MST"))
					return nil
				}
				return printPolicy(r, cmd, v.PrivacySettingsView)
			})
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why (required, audited)")
	return cmd
}

func newFlowCmd(r *remote) *cobra.Command {
	var reason string
	var off bool
	cmd := &cobra.Command{
		Use: "flow FLOW", Short: "Consent to an outbound data flow (or --off to stop it); all are off by default", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return r.call(cmd, func(a *apiCall) error {
				var v api.PrivacySettingsView
				if err := a.do("PUT", tenantPath(a.tenant, "/privacy/flows"), api.FlowRequest{Flow: args[0], Enabled: !off, Reason: reason}, &v); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s is now %s.\n", args[0], onOff(v.Flows[args[0]].Enabled))
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&off, "off", false, "switch the flow off")
	cmd.Flags().StringVar(&reason, "reason", "", "why (required, audited)")
	return cmd
}

func newNoticeCmd(r *remote) *cobra.Command {
	cmd := &cobra.Command{Use: "notice", Short: "Versioned privacy notices per ownership class"}
	var ownership string
	var files []string
	publish := &cobra.Command{
		Use:   "publish",
		Short: "Publish a new version from Markdown files (--file en=notice.en.md --file de=notice.de.md)",
		Long:  "Each file's first line, a Markdown heading, is the title. Affected employees are asked to consent again.",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			in := api.NoticeRequest{Ownership: ownership}
			for _, f := range files {
				lang, path, ok := strings.Cut(f, "=")
				if !ok {
					return fmt.Errorf("--file %q: want LANGUAGE=PATH", f)
				}
				b, err := os.ReadFile(path)
				if err != nil {
					return err
				}
				title, body, _ := strings.Cut(string(b), "\n")
				in.Translations = append(in.Translations, privacy.Translation{Language: lang, Title: strings.TrimSpace(strings.TrimLeft(title, "# ")), Body: strings.TrimSpace(body)})
			}
			return r.call(cmd, func(a *apiCall) error {
				var v api.NoticeVersionView
				if err := a.do("POST", tenantPath(a.tenant, "/privacy/notices"), in, &v); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "Published version %d of the %s notice.\n", v.Version, v.Ownership)
				return nil
			})
		},
	}
	publish.Flags().StringVar(&ownership, "ownership", "", "corporate, personal, user_enrolled or shared")
	publish.Flags().StringArrayVar(&files, "file", nil, "LANGUAGE=PATH of a Markdown file (repeat per language)")
	list := &cobra.Command{
		Use: "list", Short: "List notices", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return r.call(cmd, func(a *apiCall) error {
				out, err := collect[api.NoticeView](a, tenantPath(a.tenant, "/privacy/notices"))
				if err != nil {
					return err
				}
				return r.print(cmd.OutOrStdout(), out, []string{"OWNERSHIP", "VERSION", "LANGUAGE", "TITLE", "PUBLISHED"}, func(i int) []string {
					n := out.Items[i]
					return []string{n.Ownership, strconv.FormatInt(n.Version, 10), n.Language, n.Title, n.PublishedAt.Format("2006-01-02")}
				}, len(out.Items))
			})
		},
	}
	cmd.AddCommand(publish, list)
	return cmd
}

func newVerifyCertificateCmd(r *remote) *cobra.Command {
	var file, keyFile string
	cmd := &cobra.Command{
		Use:   "verify-certificate",
		Short: "Check a deletion certificate's signature with the audit public key (offline with --public-key)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			raw, err := os.ReadFile(file)
			if err != nil {
				return err
			}
			var sc privacy.SignedCertificate
			if err := json.Unmarshal(raw, &sc); err != nil {
				return fmt.Errorf("%s is not a certificate file: %w", file, err)
			}
			var pem []byte
			if keyFile != "" {
				if pem, err = os.ReadFile(keyFile); err != nil {
					return err
				}
			} else {
				c, err := r.client()
				if err != nil {
					return err
				}
				var v api.PublicKeyView
				if err := c.Do(cmd.Context(), "GET", "/api/v1/audit/public-key", nil, &v); err != nil {
					return err
				}
				pem = []byte(v.PublicKeyPEM)
			}
			pub, err := audit.ParsePublicKeyPEM(pem)
			if err != nil {
				return err
			}
			c, err := privacy.VerifyCertificate(pub, sc)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Valid deletion certificate %s: %s %s erased %s by %s; %d keys destroyed.\n",
				c.ID, c.Scope, firstNonEmpty(c.Pseudonym, c.SubjectID, strings.Join(c.DeviceIDs, ",")), c.ErasedAt.Format("2006-01-02 15:04 MST"),
				c.RequestedBy, len(c.KeysDestroyed))
			return nil
		},
	}
	cmd.Flags().StringVar(&file, "file", "", "the certificate JSON (as saved by 'steward person erase')")
	cmd.Flags().StringVar(&keyFile, "public-key", "", "audit public key PEM (default: fetch from the server)")
	_ = cmd.MarkFlagRequired("file")
	return cmd
}

// writeOut writes body to path (0600/0644 via a temporary file) or stdout.
func writeOut(cmd *cobra.Command, path string, body []byte, mode os.FileMode) error {
	if path == "" {
		_, err := cmd.OutOrStdout().Write(body)
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, body, mode); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "Wrote %s (%d bytes).\n", filepath.Clean(path), len(body))
	return nil
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}
