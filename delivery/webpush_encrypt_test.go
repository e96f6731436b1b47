package delivery_test

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"os"
	"testing"

	"github.com/herald-im/herald/delivery"
)

type rfc8291Example struct {
	Plaintext  string `json:"plaintext"`
	UAPrivate  string `json:"ua_private"`
	UAPublic   string `json:"ua_public"`
	AuthSecret string `json:"auth_secret"`
	ASPrivate  string `json:"as_private"`
	Salt       string `json:"salt"`
	Body       string `json:"body"`
}

func b64(t testing.TB, s string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatalf("decode %q: %v", s, err)
	}
	return b
}

func loadExample(t *testing.T) rfc8291Example {
	t.Helper()
	raw, err := os.ReadFile("testdata/rfc8291-appendix-a.json")
	if err != nil {
		t.Fatal(err)
	}
	var ex rfc8291Example
	if err := json.Unmarshal(raw, &ex); err != nil {
		t.Fatal(err)
	}
	return ex
}

func TestEncryptWebPushRFC8291AppendixA(t *testing.T) {
	t.Parallel()
	ex := loadExample(t)
	asPrivate, err := ecdh.P256().NewPrivateKey(b64(t, ex.ASPrivate))
	if err != nil {
		t.Fatal(err)
	}
	keys := delivery.WebPushKeys{P256dh: b64(t, ex.UAPublic), Auth: b64(t, ex.AuthSecret)}
	got, err := delivery.EncryptWebPush([]byte(ex.Plaintext), keys, asPrivate, b64(t, ex.Salt), 0)
	if err != nil {
		t.Fatal(err)
	}
	if want := b64(t, ex.Body); !bytes.Equal(got, want) {
		t.Fatalf("body differs from RFC 8291 Appendix A\n got %s\nwant %s",
			base64.RawURLEncoding.EncodeToString(got), ex.Body)
	}
}

func TestDecryptWebPushRFC8291AppendixA(t *testing.T) {
	t.Parallel()
	ex := loadExample(t)
	uaPrivate, err := ecdh.P256().NewPrivateKey(b64(t, ex.UAPrivate))
	if err != nil {
		t.Fatal(err)
	}
	got, err := delivery.DecryptWebPush(b64(t, ex.Body), uaPrivate, b64(t, ex.AuthSecret))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != ex.Plaintext {
		t.Fatalf("plaintext = %q, want %q", got, ex.Plaintext)
	}
}

func TestEncryptWebPushRejectsBadInput(t *testing.T) {
	t.Parallel()
	ua, _ := ecdh.P256().GenerateKey(rand.Reader)
	as, _ := ecdh.P256().GenerateKey(rand.Reader)
	salt := make([]byte, 16)
	good := delivery.WebPushKeys{P256dh: ua.PublicKey().Bytes(), Auth: make([]byte, 16)}
	tests := []struct {
		name      string
		plaintext []byte
		keys      delivery.WebPushKeys
	}{
		{"too large", make([]byte, delivery.WebPushMaxPlaintext+1), good},
		{"short p256dh", []byte("x"), delivery.WebPushKeys{P256dh: []byte{4, 1, 2}, Auth: make([]byte, 16)}},
		{"point not on curve", []byte("x"), delivery.WebPushKeys{P256dh: append([]byte{4}, make([]byte, 64)...), Auth: make([]byte, 16)}},
		{"short auth", []byte("x"), delivery.WebPushKeys{P256dh: ua.PublicKey().Bytes(), Auth: make([]byte, 4)}},
	}
	for _, tt := range tests {
		if _, err := delivery.EncryptWebPush(tt.plaintext, tt.keys, as, salt, 0); err == nil {
			t.Errorf("%s: no error", tt.name)
		}
	}
}

// FuzzEncryptWebPush checks that whatever fits is padded, fits one push
// body and decrypts to the same bytes.
func FuzzEncryptWebPush(f *testing.F) {
	f.Add([]byte("When I grow up, I want to be a watermelon"), 0)
	f.Add([]byte{}, 64)
	f.Add(bytes.Repeat([]byte{0}, 100), 4096)
	ua, _ := ecdh.P256().GenerateKey(rand.Reader)
	auth := make([]byte, 16)
	rand.Read(auth)
	keys := delivery.WebPushKeys{P256dh: ua.PublicKey().Bytes(), Auth: auth}
	f.Fuzz(func(t *testing.T, plaintext []byte, padTo int) {
		as, _ := ecdh.P256().GenerateKey(rand.Reader)
		salt := make([]byte, 16)
		rand.Read(salt)
		body, err := delivery.EncryptWebPush(plaintext, keys, as, salt, padTo%5000)
		if len(plaintext) > delivery.WebPushMaxPlaintext {
			if err == nil {
				t.Fatal("oversized plaintext accepted")
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(body) > delivery.WebPushMaxBody {
			t.Fatalf("body is %d bytes", len(body))
		}
		got, err := delivery.DecryptWebPush(body, ua, auth)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, plaintext) {
			t.Fatal("round trip changed the plaintext")
		}
	})
}
