package config_test

import (
	"strings"
	"testing"

	"github.com/herald-im/herald/config"
)

func TestMetricsSettings(t *testing.T) {
	t.Parallel()
	secret := strings.Repeat("s", 32)
	c, err := config.FromLookup(lookup(map[string]string{"HERALD_SECRET": secret}), true)
	if err != nil {
		t.Fatal(err)
	}
	if c.MetricsListen != "" || c.MetricsToken != "" {
		t.Fatalf("metrics settings default to none: %q %q", c.MetricsListen, c.MetricsToken)
	}
	c, err = config.FromLookup(lookup(map[string]string{"HERALD_SECRET": secret,
		"HERALD_METRICS_LISTEN": "10.0.0.5:9090", "HERALD_METRICS_TOKEN": "0123456789abcdef"}), true)
	if err != nil || c.MetricsListen != "10.0.0.5:9090" || c.MetricsToken != "0123456789abcdef" {
		t.Fatalf("%v %+v", err, c)
	}
	for name, env := range map[string]map[string]string{
		"listen not host:port": {"HERALD_METRICS_LISTEN": "9090"},
		"listen is the API's":  {"HERALD_METRICS_LISTEN": "127.0.0.1:8080"},
		"token too short":      {"HERALD_METRICS_TOKEN": "short"},
		"token with a space":   {"HERALD_METRICS_TOKEN": "0123456789 abcdef"},
	} {
		env["HERALD_SECRET"] = secret
		_, err := config.FromLookup(lookup(env), true)
		want := "HERALD_METRICS_LISTEN"
		if strings.HasPrefix(name, "token") {
			want = "HERALD_METRICS_TOKEN"
		}
		if err == nil || !config.IsConfigError(err) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
