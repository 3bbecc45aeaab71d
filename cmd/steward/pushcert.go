package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/steward-mdm/steward/internal/api"
	"github.com/steward-mdm/steward/internal/apple/apns"
	"github.com/steward-mdm/steward/internal/client"
)

// pushCertPasswordEnv holds a PKCS#12 push certificate's password for
// scripts. There is no flag for it: a flag's value shows in ps and in the
// shell's history.
const pushCertPasswordEnv = "STEWARD_PUSH_CERTIFICATE_PASSWORD"

// newPushCertificateCmd uploads a tenant's APNs push certificate and shows
// its topic, expiry and health.
func newPushCertificateCmd(r *remote) *cobra.Command {
	cmd := &cobra.Command{Use: "push-certificate", Short: "The tenant's APNs push certificate, without which no Apple device can be woken or enrolled: upload it, show its expiry and health"}
	var keyFile string
	var replaceTopic bool
	set := &cobra.Command{
		Use: "set FILE [--key KEY-FILE] [--replace-topic]",
		Short: "Upload the push certificate: a PEM file with the certificate and its key (or the key in --key), " +
			"or a PKCS#12 (.p12) file, whose password is asked for",
		Long: "Upload the tenant's APNs push certificate (settings.manage).\n\n" +
			"FILE is PEM (the certificate and its unencrypted private key; or the key in a second PEM file, --key)\n" +
			"or PKCS#12 (.p12, as Keychain Access exports it); which one is told by its content.\n" +
			"The PKCS#12 password is read from " + pushCertPasswordEnv + " when it is set, else asked for on\n" +
			"the terminal without echo, else read from the first line of standard input. There is no flag\n" +
			"for it, as a flag's value shows in ps and the shell's history.\n\n" +
			"Renew the certificate with Apple using the same Apple Account: its topic stays, and so do the\n" +
			"devices. A certificate for another topic is refused while devices are enrolled under the current\n" +
			"one; --replace-topic uploads it anyway, and every one of those devices stops receiving pushes and\n" +
			"must enrol again.\n\n" +
			"Prints the topic, the expiry and the health (ok, expiring within 30 days).",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, format, err := readPushCertificate(args[0], keyFile)
			if err != nil {
				return err
			}
			password := ""
			if format == client.FormatPKCS12 {
				if password, err = pushCertPassword(cmd, args[0]); err != nil {
					return err
				}
			}
			return r.call(cmd, func(a *apiCall) error {
				ctx, warn := cmd.Context(), cmd.ErrOrStderr()
				// Only to say so when the topic changes; a caller who may
				// upload but not read device data learns nothing here.
				previous, err := a.c.PushCertificate(ctx, a.tenant)
				var ce *client.Error
				none := errors.As(err, &ce) && ce.Status == http.StatusConflict // no certificate yet
				if replaceTopic && !none {
					fmt.Fprintln(warn, "Warning: --replace-topic: if this certificate's topic is not the current one, every device "+
						"enrolled under the current topic stops receiving pushes and must enrol again.")
				}
				v, err := a.c.SetPushCertificate(ctx, a.tenant, data, password, replaceTopic)
				if errors.As(err, &ce) && ce.Status == http.StatusConflict && strings.Contains(ce.Message, "replace_topic") {
					return fmt.Errorf("%w\nTo replace it anyway, run again with --replace-topic: every device enrolled under the "+
						"current topic must then enrol again", err)
				}
				if err != nil {
					return err
				}
				if previous.Topic != "" && previous.Topic != v.Topic {
					fmt.Fprintf(warn, "Warning: the topic changed from %s to %s: any device still enrolled under %s no longer "+
						"receives pushes and must enrol again.\n", previous.Topic, v.Topic, previous.Topic)
				}
				return printPushCertificate(r, cmd, v)
			})
		},
	}
	set.Flags().StringVar(&keyFile, "key", "", "PEM file with the private key, when FILE holds only the PEM certificate")
	set.Flags().BoolVar(&replaceTopic, "replace-topic", false,
		"upload a certificate for another topic although devices are enrolled under the current one: every one of them must enrol again")

	show := &cobra.Command{
		Use: "show",
		Short: "Show the push certificate's topic, expiry, days left and health; " +
			"exits with status 1 when it has expired or APNs refuses it",
		Long: "Show the tenant's push certificate (device.read): topic, expiry, days left and health, in words:\n" +
			"  ok        valid for more than 30 days;\n" +
			"  expiring  expires within 30 days: renew it with Apple using the same Apple Account and upload it;\n" +
			"  refused   APNs refuses it (or its topic), with Apple's reason: no device is woken until another is uploaded;\n" +
			"  expired   no device is woken and new enrolments are refused.\n\n" +
			"Exit status: 0 when the certificate is ok or expiring, 1 when it has expired or APNs refuses it,\n" +
			"when the tenant has none, or on any other error; the status is printed (or, with --json, the\n" +
			"API's document) before a health failure, so that monitoring scripts can alert on the status alone.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return r.call(cmd, func(a *apiCall) error {
				v, err := a.c.PushCertificate(cmd.Context(), a.tenant)
				var ce *client.Error
				if errors.As(err, &ce) && ce.Status == http.StatusConflict {
					return fmt.Errorf("%w\nUpload it with `steward push-certificate set FILE`", err)
				}
				if err != nil {
					return err
				}
				if err := printPushCertificate(r, cmd, v); err != nil {
					return err
				}
				return pushCertificateFailure(v)
			})
		},
	}
	cmd.AddCommand(set, show)
	return cmd
}

// readPushCertificate reads FILE (and the PEM key file, if any) and tells
// its format.
func readPushCertificate(path, keyPath string) ([]byte, client.PushCertificateFormat, error) {
	data, err := readSmallFile(path)
	if err != nil {
		return nil, "", err
	}
	format, err := client.DetectPushCertificateFormat(data)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", path, err)
	}
	if keyPath == "" {
		return data, format, nil
	}
	if format != client.FormatPEM {
		return nil, "", fmt.Errorf("--key goes with a PEM certificate; %s is %s, which holds its key already", path, format)
	}
	key, err := readSmallFile(keyPath)
	if err != nil {
		return nil, "", err
	}
	if f, err := client.DetectPushCertificateFormat(key); err != nil || f != client.FormatPEM {
		return nil, "", fmt.Errorf("--key %s: not a PEM file", keyPath)
	}
	if !strings.HasSuffix(string(data), "\n") {
		data = append(data, '\n')
	}
	return append(data, key...), format, nil
}

// readSmallFile reads a file no larger than a push certificate may be.
func readSmallFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, apns.MaxCertificateSize+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(data) > apns.MaxCertificateSize {
		return nil, fmt.Errorf("%s is larger than %d bytes: not a push certificate", path, apns.MaxCertificateSize)
	}
	return data, nil
}

// pushCertPassword is the PKCS#12 password: from the environment, the
// terminal (no echo) or the first line of standard input, whole (only the
// line ending is taken off: spaces may belong to it).
func pushCertPassword(cmd *cobra.Command, path string) (string, error) {
	if pw, ok := os.LookupEnv(pushCertPasswordEnv); ok {
		return pw, nil
	}
	in := cmd.InOrStdin()
	if f, ok := in.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprintf(cmd.ErrOrStderr(), "Password for %s: ", path)
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(cmd.ErrOrStderr())
		if err != nil {
			return "", fmt.Errorf("reading the password: %w", err)
		}
		return string(b), nil
	}
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && (!errors.Is(err, io.EOF) || line == "") {
		if errors.Is(err, io.EOF) {
			return "", fmt.Errorf("%s is PKCS#12 and no password came: type it at a terminal, give it on standard input "+
				"(an empty line for none) or set %s", path, pushCertPasswordEnv)
		}
		return "", fmt.Errorf("reading the password: %w", err)
	}
	return strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r"), nil
}

// pushCertificateHealth says the health in words, with what to do.
func pushCertificateHealth(v api.PushCertificateView) string {
	switch v.Health {
	case apns.HealthOK:
		return "ok"
	case apns.HealthExpiring:
		return fmt.Sprintf("expiring: %s left; renew it with Apple using the same Apple Account, then upload it "+
			"(a new certificate has another topic, and every device would have to enrol again)", daysWord(v.DaysLeft))
	case apns.HealthRefused:
		return "refused: APNs refuses this certificate or its topic, so no device is woken until a working one is uploaded"
	case apns.HealthExpired:
		return "expired: no device is woken and new enrolments are refused; renew it with Apple using the same " +
			"Apple Account, then upload it"
	default:
		return v.Health
	}
}

func daysWord(n int) string {
	if n == 1 {
		return "1 day"
	}
	return strconv.Itoa(n) + " days"
}

func printPushCertificate(r *remote, cmd *cobra.Command, v api.PushCertificateView) error {
	pairs := [][2]string{
		{"topic", v.Topic},
		{"expires", v.NotAfter.UTC().Format("2006-01-02 15:04 MST")},
		{"days left", strconv.Itoa(v.DaysLeft)},
		{"health", pushCertificateHealth(v)},
	}
	if e := v.LastError; e != nil {
		refusal := e.Reason
		if e.Status != 0 {
			refusal = fmt.Sprintf("%d %s", e.Status, e.Reason)
		}
		refusal += ", last at " + e.At.UTC().Format(time.RFC3339)
		if e.APNsID != "" {
			refusal += " (apns-id " + e.APNsID + ")"
		}
		pairs = append(pairs, [2]string{"apns refusal", refusal})
	}
	if v.FailingSince != nil {
		pairs = append(pairs, [2]string{"failing since", v.FailingSince.UTC().Format(time.RFC3339)})
	}
	return keyValues(r, cmd, v, pairs)
}

// pushCertificateFailure is show's verdict for monitoring: an error (exit
// status 1) when no device can be woken with the certificate.
func pushCertificateFailure(v api.PushCertificateView) error {
	switch {
	case v.Expired || v.Health == apns.HealthExpired:
		return fmt.Errorf("the push certificate for %s expired on %s", v.Topic, v.NotAfter.UTC().Format("2006-01-02 15:04 MST"))
	case v.Refused || v.Health == apns.HealthRefused:
		reason := "a refusal"
		if v.LastError != nil {
			reason = v.LastError.Reason
		}
		return fmt.Errorf("APNs refuses the push certificate for %s (%s)", v.Topic, reason)
	}
	return nil
}
