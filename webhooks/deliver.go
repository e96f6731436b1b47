package webhooks

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/herald-im/herald/audit"
	"github.com/herald-im/herald/invalid"
)

// DeliverArgs posts one webhook delivery.
type DeliverArgs struct {
	DeliveryID int64 `json:"delivery_id"`
}

// Kind is the job kind.
func (DeliverArgs) Kind() string { return "webhooks.deliver" }

// maxAttempts spans more than a day with the backoff of NextRetry.
const maxAttempts = 36

// InsertOpts puts deliveries on their queue.
func (DeliverArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueWebhooks, MaxAttempts: maxAttempts}
}

// DeliverWorker runs DeliverArgs.
type DeliverWorker struct {
	river.WorkerDefaults[DeliverArgs]
	Service *Service
}

// NextRetry backs off exponentially from 10 seconds, doubling to at most
// an hour, with a tenth of jitter so that a receiver coming back is not
// hit by every retry at once.
func (w *DeliverWorker) NextRetry(job *river.Job[DeliverArgs]) time.Time {
	d := 10 * time.Second << min(job.Attempt-1, 9)
	d = min(d, time.Hour)
	d += time.Duration(rand.Int64N(int64(d / 10)))
	return time.Now().Add(d)
}

// errReceiver is returned for a delivery the receiver refused or did not
// answer: River retries it.
var errReceiver = errors.New("webhooks: the receiver did not accept the delivery")

// Work posts the delivery and records the attempt.
func (w *DeliverWorker) Work(ctx context.Context, job *river.Job[DeliverArgs]) error {
	s := w.Service
	var d struct {
		endpointID, eventID         int64
		typ, url                    string
		payload                     []byte
		at                          time.Time
		enabled                     bool
		secret, previous            []byte
		previousUntil, failingSince *time.Time
		status                      string
	}
	err := s.pool.QueryRow(ctx, `SELECT d.endpoint_id, d.event_id, d.event_type, e.url, d.payload, d.event_at, e.enabled,
			e.secret, e.previous_secret, e.previous_secret_until, e.failing_since, d.status
		FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id WHERE d.id = $1`, job.Args.DeliveryID).
		Scan(&d.endpointID, &d.eventID, &d.typ, &d.url, &d.payload, &d.at, &d.enabled, &d.secret, &d.previous,
			&d.previousUntil, &d.failingSince, &d.status)
	if errors.Is(err, pgx.ErrNoRows) {
		return river.JobCancel(fmt.Errorf("webhook delivery %d is gone (endpoint deleted or subscriber erased)", job.Args.DeliveryID))
	}
	if err != nil {
		return fmt.Errorf("webhooks: load delivery: %w", err)
	}
	if d.status == "succeeded" {
		return nil
	}
	if !d.enabled {
		return river.JobCancel(fmt.Errorf("endpoint %d is disabled", d.endpointID))
	}
	secrets := []string{}
	for i, sealed := range [][]byte{d.secret, d.previous} {
		if sealed == nil || (i == 1 && (d.previousUntil == nil || d.previousUntil.Before(s.now()))) {
			continue
		}
		secret, err := s.open(d.endpointID, sealed)
		if err != nil {
			return err
		}
		secrets = append(secrets, secret)
	}
	var data map[string]json.RawMessage
	if err := json.Unmarshal(d.payload, &data); err != nil {
		return fmt.Errorf("webhooks: delivery %d payload: %w", job.Args.DeliveryID, err)
	}
	id := "whd_" + strconv.FormatInt(job.Args.DeliveryID, 10)
	body, err := json.Marshal(map[string]any{"id": id, "type": d.typ, "event_id": d.eventID,
		"created_at": d.at.UTC().Format(time.RFC3339Nano), "object": data["object"], "data": data["data"]})
	if err != nil {
		return fmt.Errorf("webhooks: delivery body: %w", err)
	}
	ts := strconv.FormatInt(s.now().Unix(), 10)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.url, bytes.NewReader(body))
	if err != nil {
		return s.record(ctx, job, d.endpointID, d.failingSince, 0, 0, "", "bad URL: "+err.Error())
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Herald-Webhooks/1")
	req.Header.Set("Herald-Webhook-Id", id)
	req.Header.Set("Herald-Webhook-Timestamp", ts)
	req.Header.Set("Herald-Signature", Sign(secrets, id, ts, body))
	started := time.Now()
	resp, err := s.client.Do(req)
	latency := time.Since(started)
	if err != nil {
		// Never the URL's query in the log: it may hold a receiver's token.
		return s.record(ctx, job, d.endpointID, d.failingSince, 0, latency, "", sanitize(err))
	}
	excerpt, _ := io.ReadAll(io.LimitReader(resp.Body, 500))
	resp.Body.Close()
	return s.record(ctx, job, d.endpointID, d.failingSince, resp.StatusCode, latency, invalid.Truncate(string(excerpt), 500), "")
}

func sanitize(err error) string {
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) {
		if inner := ue.Unwrap(); inner != nil {
			return invalid.Truncate(inner.Error(), 300)
		}
	}
	return invalid.Truncate(err.Error(), 300)
}

// record writes an attempt's result; a failure after a day of failures
// disables the endpoint, with an event and an audit entry as the notice.
func (s *Service) record(ctx context.Context, job *river.Job[DeliverArgs], endpointID int64, failingSince *time.Time,
	status int, latency time.Duration, excerpt, failure string) error {
	ok := status >= 200 && status < 300
	if !ok && failure == "" {
		failure = "answered " + strconv.Itoa(status)
	}
	result := "succeeded"
	disabled := false
	err := pgx.BeginFunc(context.WithoutCancel(ctx), s.pool, func(tx pgx.Tx) error {
		outcome := "failed"
		if ok {
			outcome = "succeeded"
		}
		if _, err := tx.Exec(ctx, `UPDATE webhook_deliveries SET status = $2, attempts = attempts + 1, response_status = $3,
			latency_ms = $4, response_excerpt = $5, error = $6, last_attempt_at = now() WHERE id = $1`,
			job.Args.DeliveryID, outcome, nullStatus(status), int(latency.Milliseconds()), strings.ToValidUTF8(excerpt, ""), failure); err != nil {
			return fmt.Errorf("webhooks: record attempt: %w", err)
		}
		if ok {
			_, err := tx.Exec(ctx, `UPDATE webhook_endpoints SET failing_since = NULL WHERE id = $1 AND failing_since IS NOT NULL`, endpointID)
			return err
		}
		result = "failed"
		if failingSince == nil || s.now().Sub(*failingSince) < s.cfg.DisableAfter {
			_, err := tx.Exec(ctx, `UPDATE webhook_endpoints SET failing_since = coalesce(failing_since, now()) WHERE id = $1`, endpointID)
			return err
		}
		disabled, result = true, "disabled"
		reason := fmt.Sprintf("every delivery failed for more than %s (last: %s)", s.cfg.DisableAfter, failure)
		if _, err := tx.Exec(ctx, `UPDATE webhook_endpoints SET enabled = false, disabled_reason = $2, updated_at = now() WHERE id = $1`,
			endpointID, reason); err != nil {
			return fmt.Errorf("webhooks: disable endpoint: %w", err)
		}
		return audit.Record(ctx, tx, audit.System("webhook failures"), audit.Change{Action: "webhook.disable", ObjectType: "webhook",
			ObjectID: strconv.FormatInt(endpointID, 10), Summary: map[string]any{"reason": reason}})
	})
	if err != nil {
		return err
	}
	s.results.WithLabelValues(result).Inc()
	switch {
	case ok:
		return nil
	case disabled:
		s.logger.Warn("webhook endpoint disabled after a day of failures", "endpoint_id", endpointID, "error", failure)
		return river.JobCancel(fmt.Errorf("endpoint %d disabled: %s", endpointID, failure))
	default:
		s.logger.Info("webhook delivery failed; it will be retried", "endpoint_id", endpointID,
			"delivery_id", job.Args.DeliveryID, "attempt", job.Attempt, "error", failure)
		return fmt.Errorf("%w: %s", errReceiver, failure)
	}
}

func nullStatus(s int) any {
	if s == 0 {
		return nil
	}
	return s
}

// Sign is the Herald-Signature header for a delivery: one v1= entry per
// secret (two while a rotated-out secret still signs).
func Sign(secrets []string, id, timestamp string, body []byte) string {
	parts := make([]string, 0, len(secrets))
	for _, secret := range secrets {
		parts = append(parts, "v1="+signature(secret, id, timestamp, body))
	}
	return strings.Join(parts, ", ")
}

func signature(secret, id, timestamp string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(id + "." + timestamp + "."))
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}

// ErrSignature is returned by Verify for a delivery that is not authentic
// or too old.
var ErrSignature = errors.New("webhooks: signature does not verify")

// Verify checks a delivery as a receiver should: the timestamp within
// tolerance of now, and one of the v1 signatures made with secret over the
// id, the timestamp and the raw body.
func Verify(secret string, header http.Header, body []byte, tolerance time.Duration, now time.Time) error {
	id, ts := header.Get("Herald-Webhook-Id"), header.Get("Herald-Webhook-Timestamp")
	sec, err := strconv.ParseInt(ts, 10, 64)
	if id == "" || err != nil {
		return fmt.Errorf("%w: missing id or timestamp", ErrSignature)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: timestamp outside the tolerance", ErrSignature)
	}
	want := signature(secret, id, ts, body)
	for _, part := range strings.Split(header.Get("Herald-Signature"), ",") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(part), "v1="); ok && hmac.Equal([]byte(v), []byte(want)) {
			return nil
		}
	}
	return ErrSignature
}
