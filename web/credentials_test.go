package web_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"strings"
	"testing"

	webpush "github.com/SherClockHolmes/webpush-go"
)

func TestCredentialsAPI(t *testing.T) {
	t.Parallel()
	b := setup(t)
	slug := "creds-" + randomSuffix()[:8]
	if r := b.postJSON("/api/v1/apps", b.marketer, map[string]any{"slug": slug, "name": "Shop"}); r.status != http.StatusForbidden {
		t.Fatalf("marketer creating an app: %d", r.status)
	}
	if r := b.postJSON("/api/v1/apps", b.admin, map[string]any{"slug": slug, "name": "Shop"}); r.status != http.StatusCreated {
		t.Fatalf("create app: %d %s", r.status, r.body)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	p8 := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	put := func(platform string, body any) *response {
		raw, _ := json.Marshal(body)
		return b.do(http.MethodPut, "/api/v1/apps/"+slug+"/credentials/"+platform, b.admin, "application/json", raw)
	}
	r := put("apns", map[string]any{"key_p8": p8, "key_id": "ABCDE12345", "team_id": "TEAM123456", "topic": "com.example.shop",
		"endpoint": "https://169.254.169.254"})
	if r.status != http.StatusBadRequest || r.json(t)["field"] != "endpoint" {
		t.Fatalf("endpoint must not be settable: %d %s", r.status, r.body)
	}
	r = put("apns", map[string]any{"key_p8": p8, "key_id": "ABCDE12345", "team_id": "TEAM123456", "topic": "com.example.shop"})
	if r.status != http.StatusOK || r.json(t)["apns_configured"] != true {
		t.Fatalf("set apns: %d %s", r.status, r.body)
	}
	if strings.Contains(string(r.body), "PRIVATE KEY") {
		t.Fatal("the key came back in the response")
	}
	bad := []struct {
		platform string
		body     map[string]any
		field    string
	}{
		{"apns", map[string]any{"key_p8": "nope", "key_id": "ABCDE12345", "team_id": "TEAM123456", "topic": "x"}, "key_p8"},
		{"apns", map[string]any{"key_p8": p8, "key_id": "short", "team_id": "TEAM123456", "topic": "x"}, "key_id"},
		{"fcm", map[string]any{"service_account_json": "{}"}, "service_account_json"},
		{"fcm", map[string]any{"service_account_json": serviceAccount(t, "https://oauth2.googleapis.com/token", "not a key")}, "service_account_json"},
		// The key would sign a token request posted to token_uri: only Google's.
		{"fcm", map[string]any{"service_account_json": serviceAccount(t, "http://169.254.169.254/token", "")}, "service_account_json"},
		{"vapid", map[string]any{"public_key": "AAAA", "private_key": "AAAA", "subject": "mailto:x@y.z"}, "private_key"},
		{"pager", map[string]any{}, "platform"},
	}
	for _, tt := range bad {
		if r := put(tt.platform, tt.body); r.status != 422 || r.json(t)["field"] != tt.field {
			t.Errorf("%s %v: %d %s", tt.platform, tt.body, r.status, r.body)
		}
	}
	if r := put("fcm", map[string]any{"service_account_json": serviceAccount(t, "https://oauth2.googleapis.com/token", "")}); r.status != http.StatusOK ||
		strings.Contains(string(r.body), "PRIVATE KEY") {
		t.Fatalf("set fcm: %d %s", r.status, r.body)
	}
	priv, pub, _ := webpush.GenerateVAPIDKeys()
	_, otherPub, _ := webpush.GenerateVAPIDKeys()
	if r := put("vapid", map[string]any{"public_key": otherPub, "private_key": priv, "subject": "mailto:x@y.z"}); r.status != 422 {
		t.Fatalf("mismatched vapid pair: %d", r.status)
	}
	r = put("vapid", map[string]any{"public_key": pub, "private_key": priv, "subject": "mailto:x@y.z"})
	if r.status != http.StatusOK || r.json(t)["vapid_public_key"] != pub {
		t.Fatalf("set vapid: %d %s", r.status, r.body)
	}
	if r := b.do(http.MethodDelete, "/api/v1/apps/"+slug+"/credentials/apns", b.admin, "", nil); r.status != http.StatusNoContent {
		t.Fatalf("delete: %d", r.status)
	}
	if r := b.do(http.MethodGet, "/api/v1/apps/"+slug, b.admin, "", nil); r.json(t)["apns_configured"] != false {
		t.Fatalf("after delete: %s", r.body)
	}
}

// serviceAccount is a service account file with a fresh RSA key (or the
// given private_key text) and token_uri.
func serviceAccount(t *testing.T, tokenURI, privateKey string) string {
	t.Helper()
	if privateKey == "" {
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		privateKey = string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	}
	b, err := json.Marshal(map[string]string{"type": "service_account", "project_id": "herald-test", "private_key_id": "k1",
		"private_key": privateKey, "client_email": "herald@herald-test.iam.gserviceaccount.com", "token_uri": tokenURI})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
