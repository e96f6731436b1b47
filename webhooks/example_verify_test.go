package webhooks_test

import (
	"fmt"
	"net/http"
	"time"

	"github.com/herald-im/herald/webhooks"
)

// A receiver checks every delivery before it trusts it.
func ExampleVerify() {
	secret := "whsec_example"
	body := []byte(`{"id":"whd_1","type":"message.received"}`)
	now := time.Unix(1_800_000_000, 0)
	h := http.Header{}
	h.Set("Herald-Webhook-Id", "whd_1")
	h.Set("Herald-Webhook-Timestamp", "1800000000")
	h.Set("Herald-Signature", webhooks.Sign([]string{secret}, "whd_1", "1800000000", body))

	fmt.Println(webhooks.Verify(secret, h, body, 5*time.Minute, now))
	fmt.Println(webhooks.Verify(secret, h, []byte(`{"forged":true}`), 5*time.Minute, now))
	// Output:
	// <nil>
	// webhooks: signature does not verify
}
