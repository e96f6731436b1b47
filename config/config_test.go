package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/herald-im/herald/config"
)

func lookup(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := env[k]; return v, ok }
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	c, err := config.FromLookup(lookup(map[string]string{"HERALD_SECRET": strings.Repeat("s", 32)}), true)
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:8080" || c.PublicURL != "http://127.0.0.1:8080" || c.ConfirmTokenTTL != 48*time.Hour ||
		c.DatabaseURL != config.DefaultDatabaseURL || c.RateLimitPerIP != 60 || c.DeliveryRetention != 90*24*time.Hour {
		t.Fatalf("defaults %+v", c)
	}
}

func TestBadValuesNameTheVariable(t *testing.T) {
	t.Parallel()
	secret := strings.Repeat("s", 32)
	tests := map[string]map[string]string{
		"HERALD_SECRET":                   {"HERALD_SECRET": "short"},
		"HERALD_LISTEN":                   {"HERALD_SECRET": secret, "HERALD_LISTEN": "8080"},
		"HERALD_PUBLIC_URL":               {"HERALD_SECRET": secret, "HERALD_PUBLIC_URL": "herald.example.com"},
		"HERALD_DATABASE_URL":             {"HERALD_SECRET": secret, "HERALD_DATABASE_URL": "mysql://x"},
		"HERALD_CONFIRM_TOKEN_TTL":        {"HERALD_SECRET": secret, "HERALD_CONFIRM_TOKEN_TTL": "two days"},
		"HERALD_PENDING_PURGE_AFTER":      {"HERALD_SECRET": secret, "HERALD_PENDING_PURGE_AFTER": "-1h"},
		"HERALD_RATE_LIMIT_IP":            {"HERALD_SECRET": secret, "HERALD_RATE_LIMIT_IP": "lots"},
		"HERALD_RATE_LIMIT_SUBSCRIBER":    {"HERALD_SECRET": secret, "HERALD_RATE_LIMIT_SUBSCRIBER": "0"},
		"HERALD_SIMULATOR":                {"HERALD_SECRET": secret, "HERALD_SIMULATOR": "maybe"},
		"HERALD_LOG_LEVEL":                {"HERALD_SECRET": secret, "HERALD_LOG_LEVEL": "loud"},
		"HERALD_VAPID_SUBJECT":            {"HERALD_SECRET": secret, "HERALD_VAPID_SUBJECT": "admin@example.com"},
		"HERALD_SMTP_URL":                 {"HERALD_SECRET": secret, "HERALD_SMTP_URL": "mail.example.com"},
		"HERALD_SHUTDOWN_GRACE":           {"HERALD_SECRET": secret, "HERALD_SHUTDOWN_GRACE": "0s"},
		"HERALD_WORKER_ID":                {"HERALD_SECRET": secret, "HERALD_WORKER_ID": "Worker One"},
		"HERALD_WEBPUSH_HOSTS":            {"HERALD_SECRET": secret, "HERALD_WEBPUSH_HOSTS": "push.example.com,http://evil/"},
		"HERALD_WEBPUSH_PRIVATE_NETWORKS": {"HERALD_SECRET": secret, "HERALD_WEBPUSH_PRIVATE_NETWORKS": "sometimes"},
		"HERALD_DELIVERY_RETENTION":       {"HERALD_SECRET": secret, "HERALD_DELIVERY_RETENTION": "ninety days"},
	}
	for variable, env := range tests {
		_, err := config.FromLookup(lookup(env), true)
		if err == nil || !strings.Contains(err.Error(), variable) || !config.IsConfigError(err) {
			t.Errorf("%s: error %v", variable, err)
		}
	}
	if c, err := config.FromLookup(lookup(map[string]string{"HERALD_SECRET": secret, "HERALD_DELIVERY_RETENTION": "30d"}), true); err != nil ||
		c.DeliveryRetention != 30*24*time.Hour {
		t.Errorf("HERALD_DELIVERY_RETENTION=30d: %v", err)
	}
	for _, v := range []string{"0d", "-3d", "d"} {
		if _, err := config.FromLookup(lookup(map[string]string{"HERALD_SECRET": secret, "HERALD_DELIVERY_RETENTION": v}), true); err == nil {
			t.Errorf("HERALD_DELIVERY_RETENTION=%s accepted", v)
		}
	}
	// migrate needs no secret.
	if _, err := config.FromLookup(lookup(nil), false); err != nil {
		t.Errorf("without secret: %v", err)
	}
}
