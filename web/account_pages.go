package web

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/herald-im/herald/invalid"
	"github.com/herald-im/herald/users"
)

// staffPage is what every staff page's template gets.
type staffPage struct {
	L      map[string]string
	Title  string
	User   *users.User
	CSRF   string
	Error  string
	Notice string
	// Next is where to go after the page's step, a path on Herald.
	Next  string
	Email string
	Name  string
	Role  string
	// Intro is a page's opening sentence.
	Intro        string
	Action       string
	AskName      bool
	RecoveryLeft string
	RequireTOTP  bool
	QR           template.URL // data: URL of the TOTP QR code (made here, not from input)
	Secret       string
	Codes        []string
}

// staffPageFor fills what every staff page shows: language, the signed-in
// person and their CSRF token.
func (s *Server) staffPageFor(c *fiber.Ctx, titleKey string) staffPage {
	l := messages[s.langOf(c)]
	p := staffPage{L: l, Title: l[titleKey]}
	if u := sessionOf(c); u != nil {
		user := u.user
		p.User = &user
		p.CSRF = s.Users.CSRFToken(u.raw)
		p.Role = roleNames[l["Lang"]][string(user.Role)]
	}
	return p
}

func (s *Server) renderStaff(c *fiber.Ctx, status int, name string, p staffPage) error {
	var buf bytes.Buffer
	if err := s.pages.ExecuteTemplate(&buf, name, p); err != nil {
		return fmt.Errorf("web: render %s: %w", name, err)
	}
	c.Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
	c.Set(fiber.HeaderCacheControl, "no-store")
	c.Set(fiber.HeaderContentLanguage, p.L["Lang"])
	c.Vary(fiber.HeaderAcceptLanguage, fiber.HeaderCookie)
	return c.Status(status).Send(buf.Bytes())
}

// forbiddenPage answers a form post that failed the CSRF or origin check.
func (s *Server) forbiddenPage(c *fiber.Ctx) error {
	p := s.staffPageFor(c, "ForbiddenTitle")
	p.User, p.CSRF = nil, ""
	p.Intro = p.L["Forbidden"]
	return s.renderStaff(c, fiber.StatusForbidden, "staff_message.html", p)
}

// safeNext is a post-sign-in destination: a path on Herald, never another
// site (//evil.example, /\evil.example) — anything else is /account.
func safeNext(next string) string {
	// Browsers drop tabs, newlines and other control characters from a
	// URL, so "/\t/evil.example" would become "//evil.example": none is
	// taken, nor a space.
	if len(next) > 512 || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") ||
		strings.HasPrefix(next, "/\\") || strings.IndexFunc(next, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0 ||
		textReason([]byte(next)) != "" {
		return "/account"
	}
	if strings.HasPrefix(next, "/sign-in") || strings.HasPrefix(next, "/sign-out") || strings.HasPrefix(next, "/access/") {
		return "/account"
	}
	return next
}

// formText is a form field that must be text of at most max bytes: the
// pages' forms take no more.
func formText(c *fiber.Ctx, field string, max int) (string, error) {
	v := c.FormValue(field)
	if len(v) > max {
		return "", invalid.Fieldf(field, "must be at most %d bytes", max)
	}
	if r := textReason([]byte(v)); r != "" {
		return "", invalid.Field(field, r)
	}
	return v, nil
}

func (s *Server) signInPage(c *fiber.Ctx) error {
	if u, err := s.sessionFor(c, c.Cookies(sessionCookie)); err != nil {
		return err
	} else if u != nil && u.session.Stage == stageFull {
		return c.Redirect(safeNext(c.Query("next")), fiber.StatusSeeOther)
	}
	p := s.staffPageFor(c, "SignInTitle")
	p.Next = safeNext(c.Query("next"))
	return s.renderStaff(c, fiber.StatusOK, "sign_in.html", p)
}

func (s *Server) signInSubmit(c *fiber.Ctx) error {
	c.Set(fiber.HeaderCacheControl, "no-store")
	if !s.sameOrigin(c) {
		return s.forbiddenPage(c)
	}
	p := s.staffPageFor(c, "SignInTitle")
	p.Next = safeNext(c.FormValue("next"))
	email, err1 := formText(c, "email", 254)
	password, err2 := formText(c, "password", 1024)
	if err1 == nil && err2 == nil {
		p.Email = email
	}
	var res users.SignInResult
	err := errors.Join(err1, err2)
	if err == nil {
		res, err = s.Users.SignIn(c.UserContext(), email, password, clientIP(c), invalid.Truncate(c.Get(fiber.HeaderUserAgent), 300))
	}
	var locked *users.LockedOutError
	switch {
	case errors.As(err, &locked):
		c.Set(fiber.HeaderRetryAfter, strconv.Itoa(int(locked.RetryAfter/time.Second)+1))
		p.Error = p.L["LockedOut"]
		return s.renderStaff(c, fiber.StatusTooManyRequests, "sign_in.html", p)
	case errors.Is(err, users.ErrBadCredentials), isInvalid(err):
		p.Error = p.L["BadCredentials"]
		return s.renderStaff(c, fiber.StatusUnauthorized, "sign_in.html", p)
	case err != nil:
		return err
	}
	s.setSessionCookie(c, res.SessionID, res.ExpiresAt)
	return c.Redirect(nextStep(res.Stage, p.Next), fiber.StatusSeeOther)
}

func isInvalid(err error) bool {
	_, ok := invalid.As(err)
	return ok
}

// nextStep is where a new session goes first.
func nextStep(stage, next string) string {
	switch stage {
	case stageSecondFactor:
		return "/sign-in/code?next=" + strings.ReplaceAll(next, "&", "%26")
	case stageEnrol:
		return "/account/totp"
	}
	return next
}

func (s *Server) codePage(c *fiber.Ctx) error {
	u := sessionOf(c)
	if u.session.Stage != stageSecondFactor {
		return c.Redirect(nextStep(u.session.Stage, "/account"), fiber.StatusSeeOther)
	}
	p := s.staffPageFor(c, "CodeTitle")
	p.User = nil // not signed in yet: no name, no sign-out button
	p.Next = safeNext(c.Query("next"))
	return s.renderStaff(c, fiber.StatusOK, "sign_in_code.html", p)
}

func (s *Server) codeSubmit(c *fiber.Ctx) error {
	u := sessionOf(c)
	if u.session.Stage != stageSecondFactor {
		return c.Redirect(nextStep(u.session.Stage, "/account"), fiber.StatusSeeOther)
	}
	p := s.staffPageFor(c, "CodeTitle")
	p.User = nil
	p.Next = safeNext(c.FormValue("next"))
	code, err := formText(c, "code", 64)
	var raw string
	if err == nil {
		raw, err = s.Users.VerifySecondFactor(c.UserContext(), u.raw, code, clientIP(c))
	}
	var locked *users.LockedOutError
	switch {
	case errors.As(err, &locked):
		c.Set(fiber.HeaderRetryAfter, strconv.Itoa(int(locked.RetryAfter/time.Second)+1))
		p.Error = p.L["LockedOut"]
		return s.renderStaff(c, fiber.StatusTooManyRequests, "sign_in_code.html", p)
	case errors.Is(err, users.ErrBadCode), isInvalid(err):
		p.Error = p.L["BadCode"]
		return s.renderStaff(c, fiber.StatusUnauthorized, "sign_in_code.html", p)
	case errors.Is(err, users.ErrNoSession):
		s.clearSessionCookie(c)
		return c.Redirect("/sign-in", fiber.StatusSeeOther)
	case err != nil:
		return err
	}
	s.setSessionCookie(c, raw, time.Now().Add(s.Users.Config().SessionAbsolute))
	return c.Redirect(p.Next, fiber.StatusSeeOther)
}

// accessPage shows the form of an invitation, reset or first sign-in link.
func (s *Server) accessPage(c *fiber.Ctx) error {
	c.Set(fiber.HeaderCacheControl, "no-store")
	link, err := s.Users.LookupLink(c.UserContext(), c.Params("token"))
	if err != nil {
		return s.linkProblem(c, err)
	}
	return s.renderAccess(c, fiber.StatusOK, link, "", "")
}

func (s *Server) renderAccess(c *fiber.Ctx, status int, link users.Link, name, problem string) error {
	p := s.staffPageFor(c, "AccessTitle")
	p.User, p.CSRF = nil, ""
	p.Action = "/access/" + c.Params("token")
	p.Email = link.Email
	p.Error = problem
	if link.Kind == users.LinkInvitation {
		p.Intro = fmt.Sprintf(p.L["AccessInvitation"], roleNames[p.L["Lang"]][string(link.Role)])
		p.AskName = true
		p.Name = link.Name
		if name != "" {
			p.Name = name
		}
	} else {
		p.Intro = fmt.Sprintf(p.L["AccessReset"], link.Email)
	}
	return s.renderStaff(c, status, "access.html", p)
}

func (s *Server) linkProblem(c *fiber.Ctx, err error) error {
	p := s.staffPageFor(c, "LinkTitle")
	p.User, p.CSRF = nil, ""
	status := fiber.StatusNotFound
	switch {
	case errors.Is(err, users.ErrLinkInvalid):
		p.Intro = p.L["LinkInvalid"]
	case errors.Is(err, users.ErrLinkExpired):
		status, p.Intro = fiber.StatusGone, p.L["LinkExpired"]
	case errors.Is(err, users.ErrLinkUsed):
		status, p.Intro, p.Next = fiber.StatusConflict, p.L["LinkUsed"], "/sign-in"
	default:
		return err
	}
	return s.renderStaff(c, status, "staff_message.html", p)
}

func (s *Server) accessSubmit(c *fiber.Ctx) error {
	c.Set(fiber.HeaderCacheControl, "no-store")
	if !s.sameOrigin(c) {
		return s.forbiddenPage(c)
	}
	ctx := c.UserContext()
	token := c.Params("token")
	link, err := s.Users.LookupLink(ctx, token)
	if err != nil {
		return s.linkProblem(c, err)
	}
	l := messages[s.langOf(c)]
	name, err1 := formText(c, "name", 1024)
	password, err2 := formText(c, "password", 1024)
	password2, err3 := formText(c, "password2", 1024)
	if err := errors.Join(err1, err2, err3); err != nil {
		return s.renderAccess(c, fiber.StatusUnprocessableEntity, link, "", fieldProblem(l, err))
	}
	if password != password2 {
		return s.renderAccess(c, fiber.StatusUnprocessableEntity, link, name, l["PasswordsDiffer"])
	}
	user, err := s.Users.UseLink(ctx, token, password, name, clientIP(c))
	switch {
	case isInvalid(err):
		return s.renderAccess(c, fiber.StatusUnprocessableEntity, link, name, fieldProblem(l, err))
	case errors.Is(err, users.ErrLinkInvalid), errors.Is(err, users.ErrLinkExpired), errors.Is(err, users.ErrLinkUsed):
		return s.linkProblem(c, err)
	case errors.Is(err, users.ErrConflict):
		return s.linkProblem(c, users.ErrLinkUsed)
	case err != nil:
		return err
	}
	res, err := s.Users.NewSession(ctx, user, clientIP(c), invalid.Truncate(c.Get(fiber.HeaderUserAgent), 300))
	if err != nil {
		return err
	}
	s.setSessionCookie(c, res.SessionID, res.ExpiresAt)
	// A new person (or one whose access was reset) lands where the work is.
	return c.Redirect(nextStep(res.Stage, "/console"), fiber.StatusSeeOther)
}

// fieldProblem is a validation error as a page shows it.
func fieldProblem(l map[string]string, err error) string {
	if ie, ok := invalid.As(err); ok {
		return ie.Field + ": " + ie.Reason
	}
	return l["Required"]
}

func (s *Server) accountPage(c *fiber.Ctx) error {
	return s.renderAccount(c, fiber.StatusOK, "", "")
}

func (s *Server) renderAccount(c *fiber.Ctx, status int, notice, problem string) error {
	u := sessionOf(c)
	p := s.staffPageFor(c, "AccountTitle")
	p.Notice, p.Error = notice, problem
	if u.user.TOTPEnabled {
		left, err := s.Users.RecoveryCodesLeft(c.UserContext(), u.user.ID)
		if err != nil {
			return err
		}
		p.RecoveryLeft = fmt.Sprintf(p.L["RecoveryLeft"], left)
	}
	required, err := s.adminMustUseTOTP(c, u.user)
	if err != nil {
		return err
	}
	p.RequireTOTP = required
	return s.renderStaff(c, status, "account.html", p)
}

// adminMustUseTOTP reports whether user is an admin and every admin must
// use a second factor.
func (s *Server) adminMustUseTOTP(c *fiber.Ctx, user users.User) (bool, error) {
	if user.Role != "admin" {
		return false, nil
	}
	return s.Users.RequireAdminTOTP(c.UserContext())
}

func (s *Server) passwordPage(c *fiber.Ctx) error {
	return s.renderStaff(c, fiber.StatusOK, "password.html", s.staffPageFor(c, "ChangePassword"))
}

func (s *Server) passwordSubmit(c *fiber.Ctx) error {
	u := sessionOf(c)
	p := s.staffPageFor(c, "ChangePassword")
	current, err1 := formText(c, "current", 1024)
	next, err2 := formText(c, "password", 1024)
	next2, err3 := formText(c, "password2", 1024)
	if err := errors.Join(err1, err2, err3); err != nil {
		p.Error = fieldProblem(p.L, err)
		return s.renderStaff(c, fiber.StatusUnprocessableEntity, "password.html", p)
	}
	if next != next2 {
		p.Error = p.L["PasswordsDiffer"]
		return s.renderStaff(c, fiber.StatusUnprocessableEntity, "password.html", p)
	}
	err := s.Users.SetPassword(c.UserContext(), actorOf(c), u.user.ID, current, next, u.session.IDHash)
	switch {
	case errors.Is(err, users.ErrWrongPassword):
		p.Error = p.L["WrongPassword"]
		return s.renderStaff(c, fiber.StatusUnprocessableEntity, "password.html", p)
	case isInvalid(err):
		p.Error = fieldProblem(p.L, err)
		return s.renderStaff(c, fiber.StatusUnprocessableEntity, "password.html", p)
	case err != nil:
		return err
	}
	return s.renderAccount(c, fiber.StatusOK, p.L["PasswordChanged"], "")
}

// totpPage starts setting up TOTP: a new secret each time it is shown, kept
// until a code confirms it.
func (s *Server) totpPage(c *fiber.Ctx) error {
	u := sessionOf(c)
	switch {
	case u.session.Stage == stageSecondFactor:
		return c.Redirect("/sign-in/code", fiber.StatusSeeOther)
	case u.user.TOTPEnabled:
		return c.Redirect("/account", fiber.StatusSeeOther)
	}
	return s.renderTOTP(c, fiber.StatusOK, "")
}

func (s *Server) renderTOTP(c *fiber.Ctx, status int, problem string) error {
	u := sessionOf(c)
	setup, err := s.Users.BeginTOTP(c.UserContext(), u.user.ID)
	if err != nil {
		return err
	}
	p := s.staffPageFor(c, "TOTPTitle")
	p.Error = problem
	p.RequireTOTP = u.session.Stage == stageEnrol
	p.Secret = setup.Secret
	p.QR = template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(setup.QRPNG))
	return s.renderStaff(c, status, "totp.html", p)
}

func (s *Server) totpSubmit(c *fiber.Ctx) error {
	u := sessionOf(c)
	if u.session.Stage == stageSecondFactor {
		return c.Redirect("/sign-in/code", fiber.StatusSeeOther)
	}
	l := messages[s.langOf(c)]
	code, err := formText(c, "code", 64)
	var codes []string
	if err == nil {
		codes, err = s.Users.ConfirmTOTP(c.UserContext(), actorOf(c), u.user.ID, strings.ReplaceAll(code, " ", ""))
	}
	switch {
	case errors.Is(err, users.ErrBadCode), isInvalid(err):
		return s.renderTOTP(c, fiber.StatusUnprocessableEntity, l["BadCode"])
	case err != nil:
		return err
	}
	if u.session.Stage == stageEnrol {
		raw, err := s.Users.PromoteSession(c.UserContext(), u.raw)
		if err != nil {
			return err
		}
		s.setSessionCookie(c, raw, time.Now().Add(s.Users.Config().SessionAbsolute))
	}
	p := s.staffPageFor(c, "RecoveryTitle")
	p.Notice = l["TOTPEnabled"]
	p.Codes = codes
	p.Next = "/account"
	return s.renderStaff(c, fiber.StatusOK, "recovery.html", p)
}

func (s *Server) totpDisable(c *fiber.Ctx) error {
	u := sessionOf(c)
	l := messages[s.langOf(c)]
	password, err := formText(c, "password", 1024)
	if err == nil {
		err = s.Users.DisableTOTP(c.UserContext(), actorOf(c), u.user.ID, password)
	}
	switch {
	case errors.Is(err, users.ErrWrongPassword):
		return s.renderAccount(c, fiber.StatusUnprocessableEntity, "", l["WrongPassword"])
	case isInvalid(err):
		return s.renderAccount(c, fiber.StatusUnprocessableEntity, "", fieldProblem(l, err))
	case err != nil:
		return err
	}
	u.user.TOTPEnabled = false
	return s.renderAccount(c, fiber.StatusOK, l["TOTPDisabled"], "")
}

func (s *Server) recoveryCodesSubmit(c *fiber.Ctx) error {
	u := sessionOf(c)
	l := messages[s.langOf(c)]
	password, err := formText(c, "password", 1024)
	var codes []string
	if err == nil {
		codes, err = s.Users.RegenerateRecoveryCodes(c.UserContext(), actorOf(c), u.user.ID, password)
	}
	switch {
	case errors.Is(err, users.ErrWrongPassword):
		return s.renderAccount(c, fiber.StatusUnprocessableEntity, "", l["WrongPassword"])
	case isInvalid(err):
		return s.renderAccount(c, fiber.StatusUnprocessableEntity, "", fieldProblem(l, err))
	case err != nil:
		return err
	}
	p := s.staffPageFor(c, "RecoveryTitle")
	p.Codes = codes
	p.Next = "/account"
	return s.renderStaff(c, fiber.StatusOK, "recovery.html", p)
}

func (s *Server) signOut(c *fiber.Ctx) error {
	u := sessionOf(c)
	if err := s.Users.SignOut(c.UserContext(), u.raw); err != nil && !errors.Is(err, users.ErrNoSession) {
		return err
	}
	return s.signedOutPage(c)
}

func (s *Server) signOutEverywhere(c *fiber.Ctx) error {
	u := sessionOf(c)
	if _, err := s.Users.SignOutEverywhere(c.UserContext(), actorOf(c), u.user.ID); err != nil {
		return err
	}
	return s.signedOutPage(c)
}

func (s *Server) signedOutPage(c *fiber.Ctx) error {
	s.clearSessionCookie(c)
	c.Locals(userLocalsKey, nil)
	p := s.staffPageFor(c, "SignedOut")
	p.User, p.CSRF = nil, ""
	p.Next = "/sign-in"
	// Clear-Site-Data also drops what the console may have cached.
	c.Set("Clear-Site-Data", `"cache", "storage"`)
	return s.renderStaff(c, fiber.StatusOK, "staff_message.html", p)
}
