package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/steward-mdm/steward/internal/api"
	"github.com/steward-mdm/steward/internal/client"
	"github.com/steward-mdm/steward/internal/privacy"
	"github.com/steward-mdm/steward/internal/sim"
)

func newSimulateCmd(r *remote) *cobra.Command {
	cmd := &cobra.Command{Use: "simulate", Short: "Simulate devices against a running server (tests and load measurements)"}
	var n, workers, keys int
	var duration time.Duration
	var ownership string
	var setup, ecIdentity bool
	var profileDir string
	apple := &cobra.Command{
		Use:   "apple",
		Short: "Enrol N simulated Apple devices, then measure idle check-ins and command round trips",
		Long: "Each simulated device enrols exactly as a device does: it accepts the notice, downloads the signed\n" +
			"profile (a User Enrollment signs in with its work account instead, by account-driven enrolment), gets\n" +
			"its identity certificate by SCEP, sends Authenticate and TokenUpdate, and signs every\n" +
			"request. With --duration it then runs idle check-ins, and command round trips (DeviceInformation\n" +
			"queued through the API, answered by the device), each for that long, with --concurrency workers.\n" +
			"--setup publishes a notice and uploads a generated push certificate if the tenant has none: only for\n" +
			"test tenants.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return r.call(cmd, func(a *apiCall) error {
				return simulateApple(cmd.Context(), a, simOptions{n: n, workers: workers, keys: keys, duration: duration,
					ownership: ownership, setup: setup, ecIdentity: ecIdentity, profileDir: profileDir, out: cmd.OutOrStdout(), progress: cmd.ErrOrStderr()})
			})
		},
	}
	apple.Flags().IntVarP(&n, "devices", "n", 100, "devices to enrol")
	apple.Flags().IntVarP(&workers, "concurrency", "c", 16, "concurrent devices")
	apple.Flags().IntVar(&keys, "keys", 16, "RSA keys shared among the devices (generating one per device would dominate)")
	apple.Flags().DurationVarP(&duration, "duration", "t", 0, "after enrolment, run each load phase this long (0: enrol only)")
	apple.Flags().StringVar(&ownership, "ownership", "corporate", "ownership class of the devices; personal and user_enrolled register one person per device (test tenants only)")
	apple.Flags().BoolVar(&ecIdentity, "ec-identity", false, "P-256 identity keys instead of RSA (cheaper signing for the simulator; the server accepts both)")
	apple.Flags().BoolVar(&setup, "setup", false, "publish a notice and upload a generated push certificate when missing (test tenants only)")
	apple.Flags().StringVar(&profileDir, "cpu-profile", "", "write the simulator's own CPU profiles of the idle and round-trip phases to this directory")
	cmd.AddCommand(apple)
	return cmd
}

type simOptions struct {
	n, workers, keys int
	duration         time.Duration
	ownership        string
	setup            bool
	ecIdentity       bool
	profileDir       string
	out, progress    io.Writer
}

func simulateApple(ctx context.Context, a *apiCall, o simOptions) error {
	if o.setup {
		if err := simSetup(a, o.ownership); err != nil {
			return err
		}
	}
	fmt.Fprintf(o.progress, "generating %d device keys\n", o.keys)
	pool := make([]*rsa.PrivateKey, max(o.keys, 1))
	for i := range pool {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return err
		}
		pool[i] = k
	}
	httpc := a.c.DeviceHTTP(o.workers)
	devices := make([]*sim.Device, o.n)
	ids := make([]string, o.n)
	enrolments := map[string]int{}
	links := make([]string, o.n)
	// A personally owned device is a person's: each gets one, whose work
	// account a User Enrollment signs in with.
	accounts := make([]string, o.n)
	personal := privacy.Ownership(o.ownership).PersonallyOwned()
	run := uuid.NewString()[:8] // people of several runs do not collide
	for i := range links {
		in := api.EnrolmentRequest{Ownership: o.ownership}
		if personal {
			accounts[i] = fmt.Sprintf("simulated-%s-%d@example.test", run, i+1)
			var s api.SubjectView
			if err := a.do("POST", tenantPath(a.tenant, "/subjects"), api.SubjectRequest{Email: accounts[i]}, &s); err != nil {
				return fmt.Errorf("registering person %d: %w", i+1, err)
			}
			in.SubjectID = s.ID
		}
		var v api.NewEnrolmentView
		if err := a.do("POST", tenantPath(a.tenant, "/enrolments"), in, &v); err != nil {
			return fmt.Errorf("creating enrolment %d: %w", i+1, err)
		}
		links[i], enrolments[v.Enrolment.ID] = v.Link, i
		if (i+1)%100 == 0 || i+1 == o.n {
			fmt.Fprintf(o.progress, "\rinvitations created: %d/%d", i+1, o.n)
		}
	}
	fmt.Fprintln(o.progress)
	// The employee's part (notice, profile) and the device's (SCEP,
	// Authenticate, TokenUpdate) are timed apart: the second is what the
	// server does for every enrolment, whoever starts it.
	install := sim.Run(ctx, o.workers, o.n, 0, func(ctx context.Context, i int) error {
		d := sim.NewWithKey(httpc, o.ownership == string(privacy.UserEnrolled), pool[i%len(pool)])
		if o.ecIdentity {
			if err := d.UseECIdentity(); err != nil {
				return err
			}
		}
		d.Personal, d.Account = personal, accounts[i]
		if err := d.Install(ctx, links[i], false); err != nil {
			return err
		}
		devices[i] = d
		return nil
	}, func(done int) { fmt.Fprintf(o.progress, "\rnotices accepted and profiles installed: %d/%d", done, o.n) })
	fmt.Fprintf(o.progress, "\rnotices accepted and profiles installed: %d/%d\n", install.Count, o.n)
	fmt.Fprintf(o.out, "notice and profile (invitation, consent, signed profile): %s\n", install)
	enrol := sim.Run(ctx, o.workers, o.n, 0, func(ctx context.Context, i int) error {
		d := devices[i]
		if d == nil {
			return errors.New("no profile installed")
		}
		if err := d.ObtainIdentity(ctx); err != nil {
			devices[i] = nil
			return err
		}
		if err := d.Complete(ctx); err != nil {
			devices[i] = nil
			return err
		}
		return nil
	}, func(done int) { fmt.Fprintf(o.progress, "\renrolled %d/%d", done, o.n) })
	fmt.Fprintf(o.progress, "\renrolled %d/%d\n", enrol.Count, o.n)
	fmt.Fprintf(o.out, "enrolment (SCEP, Authenticate, TokenUpdate): %s\n", enrol)
	for _, s := range []sim.Stats{install, enrol} {
		if s.FirstError != nil {
			fmt.Fprintf(o.out, "  first error: %v\n", s.FirstError)
		}
	}
	all, err := collect[api.EnrolmentView](a, tenantPath(a.tenant, "/enrolments"))
	if err != nil {
		return err
	}
	for _, e := range all.Items {
		if i, ok := enrolments[e.ID]; ok {
			ids[i] = e.DeviceID
		}
	}
	var live []int
	for i, d := range devices {
		if d != nil && ids[i] != "" {
			live = append(live, i)
		}
	}
	if len(live) == 0 || o.duration <= 0 {
		return nil
	}
	// The initial inventory, so the load phases start from empty queues.
	sim.Run(ctx, o.workers, len(live), 0, func(ctx context.Context, i int) error {
		_, err := devices[live[i]].Poll(ctx)
		return err
	}, nil)
	stop, err := o.startProfile("idle")
	if err != nil {
		return err
	}
	idle := sim.Run(ctx, o.workers, 0, o.duration, func(ctx context.Context, i int) error {
		_, err := devices[live[i%len(live)]].Poll(ctx)
		return err
	}, func(done int) { fmt.Fprintf(o.progress, "\ridle check-ins: %d", done) })
	fmt.Fprintln(o.progress)
	stop()
	fmt.Fprintf(o.out, "idle check-ins: %s\n", idle)
	if stop, err = o.startProfile("rounds"); err != nil {
		return err
	}
	rounds := sim.Run(ctx, o.workers, 0, o.duration, func(ctx context.Context, i int) error {
		k := live[i%len(live)]
		if err := a.do("POST", tenantPath(a.tenant, "/devices/"+ids[k]+"/commands"), api.CommandRequest{RequestType: "DeviceInformation"}, nil); err != nil {
			return err
		}
		got, err := devices[k].Poll(ctx)
		if err == nil && got == 0 {
			return fmt.Errorf("the device received no command")
		}
		return err
	}, func(done int) { fmt.Fprintf(o.progress, "\rcommand round trips: %d", done) })
	stop()
	fmt.Fprintln(o.progress)
	fmt.Fprintf(o.out, "command round trips (enqueue via API, Idle, DeviceInformation result): %s\n", rounds)
	start := time.Now()
	var bulk api.BulkCommandView
	if err := a.do("POST", tenantPath(a.tenant, "/commands"), api.BulkCommandRequest{CommandRequest: api.CommandRequest{RequestType: "SecurityInfo"},
		AllEnrolled: true}, &bulk); err != nil {
		return err
	}
	fmt.Fprintf(o.out, "one command queued for every enrolled device through the API: %d devices in %v\n", bulk.Queued, time.Since(start).Round(time.Millisecond))
	for _, s := range []sim.Stats{idle, rounds} {
		if s.FirstError != nil {
			fmt.Fprintf(o.out, "  first error: %v\n", s.FirstError)
		}
	}
	return nil
}

// simSetup prepares a test tenant: a notice for the class and a generated
// push certificate, each only when missing.
func simSetup(a *apiCall, ownership string) error {
	var settings api.PrivacySettingsView
	if err := a.do("GET", tenantPath(a.tenant, "/privacy/settings"), nil, &settings); err != nil {
		return err
	}
	if settings.NoticeVersions[privacy.Ownership(ownership)] == 0 {
		in := api.NoticeRequest{Ownership: ownership, Translations: []privacy.Translation{{Language: "en", Title: "Simulated devices",
			Body: privacy.PlainSummary(privacy.Settings{Policy: settings.Policy, RetentionDays: settings.RetentionDays}, privacy.Ownership(ownership))}}}
		if err := a.do("POST", tenantPath(a.tenant, "/privacy/notices"), in, nil); err != nil {
			return err
		}
	}
	// Only a tenant with none gets one: any other failure to read it (a
	// permission, a server fault) must not replace the real certificate.
	err := a.do("GET", tenantPath(a.tenant, "/apple/push-certificate"), nil, nil)
	var none *client.Error
	if !errors.As(err, &none) || none.Status != http.StatusConflict {
		return err
	}
	certPEM, err := sim.PushCertificatePEM("com.apple.mgmt.External." + strings.ToLower(uuid.NewString()))
	if err != nil {
		return err
	}
	return a.do("PUT", tenantPath(a.tenant, "/apple/push-certificate"), api.PushCertificateRequest{
		Certificate: base64.StdEncoding.EncodeToString(certPEM)}, nil)
}

// startProfile writes the simulator's CPU profile of one phase to
// profileDir/sim-<phase>.pprof, so a benchmark can tell the simulator's share
// of the two processes' CPU from the server's.
func (o simOptions) startProfile(phase string) (stop func(), err error) {
	if o.profileDir == "" {
		return func() {}, nil
	}
	f, err := os.Create(filepath.Join(o.profileDir, "sim-"+phase+".pprof"))
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}
