package delivery

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/json"
	"regexp"
	"strings"

	"github.com/sideshow/apns2/token"

	"github.com/herald-im/herald/invalid"
)

var (
	appleIDRE = regexp.MustCompile(`^[A-Z0-9]{10}$`)
	topicRE2  = regexp.MustCompile(`^[A-Za-z0-9.-]{1,155}$`)
)

// Validate checks an APNs signing key before it is stored.
func (c *APNsCredentials) Validate() error {
	if _, err := token.AuthKeyFromBytes([]byte(c.KeyP8)); err != nil {
		return invalid.Field("key_p8", "must be the PEM text of the .p8 key file from Apple")
	}
	if !appleIDRE.MatchString(c.KeyID) {
		return invalid.Field("key_id", "must be the 10-character key id from Apple")
	}
	if !appleIDRE.MatchString(c.TeamID) {
		return invalid.Field("team_id", "must be the 10-character team id from Apple")
	}
	if !topicRE2.MatchString(c.Topic) {
		return invalid.Field("topic", "must be the app's bundle id, e.g. com.example.app")
	}
	return nil
}

// googleTokenURI is where Google service accounts get their access tokens.
const googleTokenURI = "https://oauth2.googleapis.com/token"

// Validate checks an FCM service account before it is stored, and takes the
// project id from it when none is given.
func (c *FCMCredentials) Validate() error {
	var sa struct {
		Type        string `json:"type"`
		ProjectID   string `json:"project_id"`
		PrivateKey  string `json:"private_key"`
		ClientEmail string `json:"client_email"`
		TokenURI    string `json:"token_uri"`
	}
	if err := json.Unmarshal([]byte(c.ServiceAccountJSON), &sa); err != nil {
		return invalid.Field("service_account_json", "must be the service account JSON file from the Firebase console")
	}
	if sa.Type != "service_account" || sa.PrivateKey == "" || sa.ClientEmail == "" ||
		!strings.Contains(sa.PrivateKey, "PRIVATE KEY") {
		return invalid.Field("service_account_json", "needs type service_account, private_key and client_email")
	}
	// Herald signs a token request with the key and posts it to token_uri:
	// only Google's token endpoint may receive it from an uploaded file.
	if sa.TokenURI != "" && sa.TokenURI != googleTokenURI {
		return invalid.Fieldf("service_account_json", "token_uri must be %s", googleTokenURI)
	}
	if err := checkRSAKey(sa.PrivateKey); err != nil {
		return invalid.Field("service_account_json", "private_key is not an RSA private key in PEM")
	}
	if c.ProjectID == "" {
		c.ProjectID = sa.ProjectID
	}
	if c.ProjectID == "" {
		return invalid.Field("project_id", "is required (or set project_id in the service account)")
	}
	return nil
}

// Validate checks that a VAPID key pair belongs together.
func (k *VAPIDKeys) Validate() error {
	d, err := decodeB64(k.PrivateKey)
	if err != nil {
		return invalid.Field("private_key", "must be the base64url 32-byte private key")
	}
	priv, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), d)
	if err != nil {
		return invalid.Field("private_key", "must be a P-256 private key")
	}
	pub, err := decodeB64(k.PublicKey)
	if err != nil {
		return invalid.Field("public_key", "must be the base64url 65-byte public key")
	}
	own, _ := priv.PublicKey.Bytes()
	if string(own) != string(pub) {
		return invalid.Field("public_key", "does not belong to private_key")
	}
	if !strings.HasPrefix(k.Subject, "mailto:") && !strings.HasPrefix(k.Subject, "https://") {
		return invalid.Field("subject", "must be a mailto: or https: contact (RFC 8292)")
	}
	return nil
}
