package mdm

import (
	"encoding/json"
	"html/template"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/apple/mdmproto"
	"github.com/steward-mdm/steward/internal/store"
)

// Account-driven User Enrollment, the BYOD enrolment of current iOS,
// iPadOS and macOS: the employee types their work account in Settings, the
// device discovers Steward from the account's domain, signs the employee
// in through a web view, and fetches the enrolment profile with the access
// token it got. Signing in here means the enrolment code of the
// invitation, then the notice, as with the profile-based flow; the access
// token is that code, which dies once the device enrols.
const (
	wellKnownPath = "/.well-known/com.apple.remotemanagement"
	accountPath   = "/enrol/account"         // the BaseURL devices POST to
	signInPath    = "/enrol/account/sign-in" // the web-auth URL
	// loginCallback is where the web view's flow ends, as Apple defines it.
	loginCallback = "apple-remotemanagement-user-login://authentication-results"
)

// discovery answers the service discovery request. The answer is the same
// for every account, so it tells nobody who is enrolled here.
func (h *httpHandler) discovery(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(map[string]any{"Servers": []map[string]string{
		{"Version": "mdm-byod", "BaseURL": h.s.cfg.PublicURL + accountPath}}})
}

// accountEnrolment answers the device's enrolment request: without an
// access token, a 401 that starts the web sign-in; with one, the signed
// User Enrollment profile.
func (h *httpHandler) accountEnrolment(w http.ResponseWriter, r *http.Request) {
	// The body says which device asks (its MachineInfo). Steward keeps none
	// of it, but a body that is not one halts the enrolment with a 400, as
	// Apple asks of an invalid request, before any sign-in starts.
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, mdmproto.MaxMachineInfoBytes))
	if err != nil {
		h.page(w, r, apperr.New(apperr.KindTooLarge, "the request is larger than %d bytes", mdmproto.MaxMachineInfoBytes))
		return
	}
	if _, err := mdmproto.DecodeMachineInfo(body); err != nil {
		// Logged by its kind alone: the device only shows that enrolment
		// failed, and the decoder's message may quote what the device sent
		// (a serial, a UDID).
		h.cfg.Log.WarnContext(r.Context(), "account-driven enrolment request refused", "error", mdmproto.BadInputKind(err))
		h.page(w, r, apperr.Invalid("the request body is not the device's information (a MachineInfo plist)"))
		return
	}
	// Authentication schemes are case-insensitive (RFC 7235).
	scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		w.Header().Set("WWW-Authenticate", `Bearer method="apple-as-web", url="`+h.s.cfg.PublicURL+signInPath+`"`)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	ctx := r.Context()
	e, err := h.s.openEnrolment(ctx, h.s.st.Read(), strings.TrimSpace(token), EnrolmentAccepted, enrolmentUnfinished)
	if err == nil && !e.UserEnrollment {
		err = apperr.Forbidden("this enrolment is not a User Enrollment")
	}
	if err != nil {
		// Never 401 again: the device would sign in forever.
		if ae := apperr.As(err); ae.Status() == http.StatusUnauthorized {
			err = apperr.Forbidden("%s", ae.Message)
		}
		h.page(w, r, err)
		return
	}
	h.profile(w, r.WithContext(ctx), strings.TrimSpace(token), true)
}

var signInPage = template.Must(template.New("sign-in").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>Enrol this device</title>
<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;line-height:1.5}input{width:100%;font:inherit}</style></head>
<body><h1>Enrol this device for work</h1>
{{if .Error}}<p role="alert"><strong>{{.Error}}</strong></p>{{end}}
<p>Enter the enrolment code from the invitation your IT team sent you{{if .Account}} for <strong>{{.Account}}</strong>{{end}}.
You will see what your organisation can and cannot see on this device before anything is installed.</p>
<form method="post"><input type="hidden" name="user-identifier" value="{{.Account}}">
<p><label>Enrolment code<br><input name="code" autocomplete="one-time-code" required></label></p>
<button type="submit">Continue</button></form>
</body></html>
`))

func (h *httpHandler) signIn(w http.ResponseWriter, r *http.Request) {
	h.renderSignIn(w, http.StatusOK, r.URL.Query().Get("user-identifier"), "")
}

func (h *httpHandler) renderSignIn(w http.ResponseWriter, status int, account, problem string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; form-action 'self'")
	w.Header().Set("X-Frame-Options", "DENY")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
	_ = signInPage.Execute(w, map[string]any{"Account": account, "Error": problem})
}

// signInCode takes the enrolment code and sends the employee on to the
// invitation (the plain-words summary and the notice) in account mode.
func (h *httpHandler) signInCode(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	if err := r.ParseForm(); err != nil {
		h.page(w, r, apperr.Invalid("the form could not be read"))
		return
	}
	code, account := strings.TrimSpace(r.PostForm.Get("code")), strings.TrimSpace(r.PostForm.Get("user-identifier"))
	// The whole invitation link pasted is its code too.
	if i := strings.LastIndexByte(code, '/'); i >= 0 {
		code = code[i+1:]
	}
	if err := h.s.checkAccountCode(r, code, account); err != nil {
		status, msg := pageError(err)
		switch {
		case status >= 500:
			h.cfg.Log.ErrorContext(r.Context(), "account sign-in failed", "error", err.Error())
		case status == http.StatusConflict:
			status = http.StatusForbidden // an expired or used code: its own words
		default:
			status, msg = http.StatusForbidden, "This code does not open a work enrolment. Check the invitation, or ask your IT team for a new one."
		}
		h.renderSignIn(w, status, account, msg)
		return
	}
	http.Redirect(w, r, "/enrol/"+url.PathEscape(code)+"?account=1", http.StatusSeeOther)
}

// checkAccountCode refuses a code that does not open a User Enrollment
// still to be used, or that was issued for another account than the one
// the employee typed on the device.
func (s *Service) checkAccountCode(r *http.Request, code, account string) error {
	ctx := r.Context()
	q := s.st.Read()
	e, err := s.openEnrolment(ctx, q, code, store.EnrolmentOpen, EnrolmentAccepted, enrolmentUnfinished)
	if err != nil {
		return err
	}
	if !e.UserEnrollment {
		return apperr.Forbidden("not a User Enrollment")
	}
	if account == "" {
		// The device names the account typed in Settings; without it this
		// page was not opened by a device's sign-in.
		return apperr.Forbidden("no work account named")
	}
	sub, err := s.priv.Subject(ctx, q, e.TenantID, e.SubjectID)
	if err != nil {
		return err
	}
	prof, err := s.priv.OpenProfile(ctx, q, sub)
	if err != nil {
		return err
	}
	// Only the account the profile will name: a device signed in with
	// another would refuse the profile at the end.
	if !strings.EqualFold(prof.AppleAccount(), account) {
		return apperr.Forbidden("the code belongs to another account")
	}
	return nil
}

// accountToken ends the web sign-in once the notice is accepted: the web
// view follows the redirect to Apple's callback, and the device keeps the
// token for its enrolment request.
func (h *httpHandler) accountToken(w http.ResponseWriter, r *http.Request) {
	secret := r.PathValue("secret")
	e, err := h.s.openEnrolment(r.Context(), h.s.st.Read(), secret, EnrolmentAccepted, enrolmentUnfinished)
	if err == nil && !e.UserEnrollment {
		err = apperr.Forbidden("this enrolment is not a User Enrollment")
	}
	if err != nil {
		h.page(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Location", loginCallback+"?access-token="+url.QueryEscape(secret))
	w.WriteHeader(http.StatusPermanentRedirect)
}
