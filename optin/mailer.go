package optin

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/smtp"
	"net/url"
	"strings"
	"time"

	"github.com/riverqueue/river"

	"github.com/herald-im/herald/subscribers"
)

// Mailer sends one plain-text email.
type Mailer interface {
	Send(ctx context.Context, to, subject, body string, headers map[string]string) error
}

// SMTPMailer sends through an SMTP server from HERALD_SMTP_URL, using
// STARTTLS when the server offers it.
type SMTPMailer struct {
	Addr     string
	Username string
	Password string
	From     string
	// TLSConfig is used for STARTTLS; nil verifies the server name.
	TLSConfig *tls.Config
}

// NewSMTPMailer parses smtp://user:password@host:port.
func NewSMTPMailer(rawURL, from string) (*SMTPMailer, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("optin: smtp url: %w", err)
	}
	m := &SMTPMailer{Addr: u.Host, From: from}
	if u.Port() == "" {
		m.Addr = net.JoinHostPort(u.Hostname(), "587")
	}
	if u.User != nil {
		m.Username = u.User.Username()
		m.Password, _ = u.User.Password()
	}
	return m, nil
}

// Send implements Mailer.
func (m *SMTPMailer) Send(ctx context.Context, to, subject, body string, headers map[string]string) error {
	if strings.ContainsAny(to, "\r\n") || strings.ContainsAny(subject, "\r\n") {
		return errors.New("optin: header injection refused")
	}
	d := net.Dialer{Timeout: 10 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", m.Addr)
	if err != nil {
		return fmt.Errorf("optin: smtp dial: %w", err)
	}
	if dl, ok := ctx.Deadline(); ok {
		// Without the deadline a stalled server would hold the job past
		// its timeout.
		if err := conn.SetDeadline(dl); err != nil {
			_ = conn.Close() // the deadline error is the one to report
			return fmt.Errorf("optin: smtp deadline: %w", err)
		}
	}
	// The dial above succeeded, so Addr is host:port.
	host, _, _ := net.SplitHostPort(m.Addr)
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		_ = conn.Close() // the hello error is the one to report
		return fmt.Errorf("optin: smtp hello: %w", err)
	}
	// Closing after QUIT, or after an error that is returned, has nothing
	// left to report.
	defer func() { _ = c.Close() }()
	if ok, _ := c.Extension("STARTTLS"); ok {
		cfg := m.TLSConfig
		if cfg == nil {
			cfg = &tls.Config{ServerName: host}
		}
		if err := c.StartTLS(cfg); err != nil {
			return fmt.Errorf("optin: smtp starttls: %w", err)
		}
	}
	if m.Username != "" {
		if err := c.Auth(smtp.PlainAuth("", m.Username, m.Password, host)); err != nil {
			return fmt.Errorf("optin: smtp auth: %w", err)
		}
	}
	if err := c.Mail(m.From); err != nil {
		return fmt.Errorf("optin: smtp mail from: %w", err)
	}
	if err := c.Rcpt(to); err != nil {
		return fmt.Errorf("optin: smtp rcpt: %w", err)
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("optin: smtp data: %w", err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\nMIME-Version: 1.0\r\n",
		m.From, to, mime.QEncoding.Encode("utf-8", subject), time.Now().Format(time.RFC1123Z))
	b.WriteString("Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n")
	for k, v := range headers {
		fmt.Fprintf(&b, "%s: %s\r\n", k, v)
	}
	b.WriteString("\r\n")
	b.WriteString(strings.ReplaceAll(body, "\n", "\r\n"))
	if _, err := w.Write([]byte(b.String())); err != nil {
		return fmt.Errorf("optin: smtp write: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("optin: smtp end data: %w", err)
	}
	// The server took responsibility for the message when it accepted the
	// end of DATA. QUIT is a courtesy: if it fails, returning that would
	// make River send the same email again, so it is ignored on purpose.
	_ = c.Quit()
	return nil
}

// SendConfirmationEmailArgs emails a confirmation link.
type SendConfirmationEmailArgs struct {
	SubscriberID int64 `json:"subscriber_id"`
	ListID       int64 `json:"list_id"`
	// RequestedAt names the pending request, as in SendConfirmationArgs.
	RequestedAt time.Time `json:"requested_at"`
}

// Kind implements river.JobArgs.
func (SendConfirmationEmailArgs) Kind() string { return "optin.send_confirmation_email" }

// InsertOpts implements river.JobArgsWithInsertOpts: one job per request, as
// for push confirmations.
func (SendConfirmationEmailArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueOptIn, MaxAttempts: 8, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// ConfirmationEmailWorker emails confirmations.
type ConfirmationEmailWorker struct {
	river.WorkerDefaults[SendConfirmationEmailArgs]
	Service *Service
}

// Work implements river.Worker.
func (w *ConfirmationEmailWorker) Work(ctx context.Context, job *river.Job[SendConfirmationEmailArgs]) error {
	s, a := w.Service, job.Args
	if s.mailer == nil {
		return river.JobCancel(errors.New("SMTP is not configured"))
	}
	status, err := subscribers.MembershipStatusOf(ctx, s.pool, a.ListID, a.SubscriberID)
	if errors.Is(err, subscribers.ErrNotFound) {
		return nil // purged meanwhile: nothing to confirm
	}
	if err != nil {
		return fmt.Errorf("optin: confirmation email: %w", err)
	}
	if status != subscribers.StatusPending {
		return nil // confirmed or left meanwhile: nothing to send
	}
	sub, err := subscribers.Get(ctx, s.pool, a.SubscriberID)
	if err != nil {
		return fmt.Errorf("optin: confirmation email: %w", err)
	}
	if sub.Email == nil || sub.State != subscribers.StateActive {
		return nil // the address was removed, or the person blocked or erased, meanwhile
	}
	list, err := subscribers.GetListByID(ctx, s.pool, a.ListID)
	if err != nil {
		return fmt.Errorf("optin: confirmation email: %w", err)
	}
	token, err := s.newConfirmToken(ctx, s.pool, a.SubscriberID, a.ListID)
	if err != nil {
		return err
	}
	unsubscribe := s.UnsubscribeURL(a.SubscriberID, a.ListID)
	body := fmt.Sprintf("Hello,\n\nsomeone (hopefully you) asked to receive messages from %q.\n\n"+
		"Please confirm here:\n%s\n\nIf you did not ask, ignore this email and nothing will happen.\n\n"+
		"Unsubscribe: %s\n", list.Name, s.ConfirmURL(token), unsubscribe)
	return s.mailer.Send(ctx, *sub.Email, "Please confirm: "+list.Name, body, map[string]string{
		"List-Unsubscribe":      "<" + unsubscribe + ">",
		"List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
	})
}
