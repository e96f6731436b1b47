package optin_test

import (
	"context"
	"testing"

	"github.com/herald-im/herald/optin"
)

func TestSMTPMailer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("QueuedMessageIsSentEvenIfQuitFails", func(t *testing.T) {
		t.Parallel()
		server := startSMTPServer(t, &smtpServer{hangUpOnQuit: true})
		m := &optin.SMTPMailer{Addr: server.addr, From: "herald@example.com"}
		// An error here would make River send the email again.
		if err := m.Send(ctx, "ada@example.com", "Please confirm", "Hello", nil); err != nil {
			t.Fatalf("send: %v", err)
		}
		if server.count() != 1 {
			t.Fatalf("server queued %d messages", server.count())
		}
	})

	t.Run("HeaderInjectionIsRefused", func(t *testing.T) {
		t.Parallel()
		server := startSMTP(t)
		m := &optin.SMTPMailer{Addr: server.addr, From: "herald@example.com"}
		if err := m.Send(ctx, "ada@example.com\r\nRCPT TO:<eve@example.com>", "x", "y", nil); err == nil {
			t.Fatal("header injection accepted")
		}
	})
}
