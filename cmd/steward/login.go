package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/steward-mdm/steward/internal/client"
)

// prompter asks questions on the terminal, or reads answers line by line
// from stdin when it is not a terminal (scripts, tests).
type prompter struct {
	in  *bufio.Reader
	out io.Writer
}

func newPrompter(cmd *cobra.Command) *prompter {
	return &prompter{in: bufio.NewReader(cmd.InOrStdin()), out: cmd.ErrOrStderr()}
}

func (p *prompter) ask(question string) (string, error) {
	fmt.Fprint(p.out, question)
	line, err := p.in.ReadString('\n')
	if err != nil && (line == "" || !errors.Is(err, io.EOF)) {
		return "", fmt.Errorf("reading %s: %w", strings.TrimSuffix(question, ": "), err)
	}
	return strings.TrimSpace(line), nil
}

// secret reads without echo on a terminal.
func (p *prompter) secret(question string) (string, error) {
	if f, ok := p.out.(*os.File); ok && term.IsTerminal(int(os.Stdin.Fd())) {
		fmt.Fprint(f, question)
		b, err := term.ReadPassword(int(os.Stdin.Fd()))
		fmt.Fprintln(f)
		return string(b), err
	}
	return p.ask(question)
}

type loginView struct {
	State     string    `json:"state"`
	SessionID string    `json:"session_id"`
	Secret    string    `json:"secret"`
	ExpiresAt time.Time `json:"expires_at"`
}

func newLoginCmd(r *remote) *cobra.Command {
	var email string
	cmd := &cobra.Command{
		Use:   "login",
		Short: "Sign in to a server and keep the session for later commands",
		Long: "Sign in with email and password and, when required, your authenticator code; if you have no\n" +
			"authenticator yet and one is required, enrol it here. The CLI session is saved with mode 0600\n" +
			"(STEWARD_CREDENTIALS or your config directory). Pin a self-signed server with --fingerprint.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if r.server == "" {
				return errors.New("--server is required for login")
			}
			c, err := client.New(r.server, "", client.TLSOptions{Fingerprint: r.fingerprint, CAFile: r.caFile})
			if err != nil {
				return err
			}
			p := newPrompter(cmd)
			if email == "" {
				if email, err = p.ask("Email: "); err != nil {
					return err
				}
			}
			pw, err := p.secret("Password: ")
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			var lv loginView
			if err := c.Do(ctx, "POST", "/api/v1/auth/login", map[string]string{"email": email, "password": pw, "client": "cli"}, &lv); err != nil {
				return err
			}
			c.Secret = lv.Secret
			if lv, err = secondFactor(ctx, c, p, lv); err != nil {
				return err
			}
			creds := client.Credentials{Server: r.server, Fingerprint: r.fingerprint, CAFile: r.caFile, Secret: lv.Secret,
				SessionID: lv.SessionID, ExpiresAt: lv.ExpiresAt}
			if err := client.SaveCredentials(creds); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Signed in; the session lasts until %s.\n", lv.ExpiresAt.Local().Format(time.RFC1123))
			return nil
		},
	}
	cmd.Flags().StringVar(&email, "email", "", "your email (asked when omitted)")
	return cmd
}

// secondFactor finishes a login that needs a TOTP code, enrolling an
// authenticator first when the account has none.
func secondFactor(ctx context.Context, c *client.Client, p *prompter, lv loginView) (loginView, error) {
	switch lv.State {
	case "complete":
		return lv, nil
	case "mfa_required":
		code, err := p.ask("Authenticator code (or a recovery code): ")
		if err != nil {
			return lv, err
		}
		body := map[string]string{"code": code}
		if len(code) > 8 {
			body = map[string]string{"recovery_code": code}
		}
		var out loginView
		err = c.Do(ctx, "POST", "/api/v1/auth/mfa", body, &out)
		return out, err
	case "mfa_enrollment_required":
		var en struct {
			Secret string `json:"secret"`
			URI    string `json:"otpauth_uri"`
		}
		if err := c.Do(ctx, "POST", "/api/v1/me/mfa/enroll", nil, &en); err != nil {
			return lv, err
		}
		fmt.Fprintf(p.out, "A second factor is required. Add this account to your authenticator app:\n  key: %s\n  or:  %s\n", en.Secret, en.URI)
		code, err := p.ask("Code shown by the app: ")
		if err != nil {
			return lv, err
		}
		var conf struct {
			RecoveryCodes []string   `json:"recovery_codes"`
			Login         *loginView `json:"login"`
		}
		if err := c.Do(ctx, "POST", "/api/v1/me/mfa/confirm", map[string]string{"code": code}, &conf); err != nil {
			return lv, err
		}
		fmt.Fprintf(p.out, "Recovery codes (each works once; store them safely, they are not shown again):\n  %s\n",
			strings.Join(conf.RecoveryCodes, "\n  "))
		if conf.Login == nil {
			return lv, errors.New("the server did not complete the sign-in")
		}
		return *conf.Login, nil
	default:
		return lv, fmt.Errorf("unexpected login state %q", lv.State)
	}
}

func newLogoutCmd(r *remote) *cobra.Command {
	return &cobra.Command{
		Use:   "logout",
		Short: "End the saved CLI session and forget it",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := r.client()
			if err == nil && c.Secret != "" {
				if err := c.Do(cmd.Context(), "POST", "/api/v1/auth/logout", nil, nil); err != nil {
					fmt.Fprintln(cmd.ErrOrStderr(), "warning: the server did not end the session:", err)
				}
			}
			return client.RemoveCredentials()
		},
	}
}
