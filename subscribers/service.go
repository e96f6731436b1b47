package subscribers

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strconv"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/herald-im/herald/audit"
	"github.com/herald-im/herald/database"
)

// Service makes the changes staff and systems ask for (lists, subscribers,
// test devices, imports), each in its own transaction with its audit entry
// and event. The package functions are its building blocks, which other
// services (optin) compose in their own transactions.
type Service struct {
	db     database.Pool
	river  *river.Client[pgx.Tx]
	logger *slog.Logger
}

// NewService returns a ready Service; inserter inserts the import jobs (an
// insert-only River client will do).
func NewService(db database.Pool, inserter *river.Client[pgx.Tx], logger *slog.Logger) *Service {
	if logger == nil {
		logger = slog.Default()
	}
	return &Service{db: db, river: inserter, logger: logger}
}

func record(ctx context.Context, tx pgx.Tx, actor audit.Actor, action, objectType, id string, summary map[string]any) error {
	return audit.Record(ctx, tx, actor, audit.Change{Action: action, ObjectType: objectType, ObjectID: id, Summary: summary})
}

// CreateList makes a list.
func (s *Service) CreateList(ctx context.Context, actor audit.Actor, p ListParams) (*List, error) {
	var l *List
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		var err error
		if l, err = CreateList(ctx, tx, p); err != nil {
			return err
		}
		return record(ctx, tx, actor, "list.create", "list", l.Slug, map[string]any{"list_id": l.ID, "optin": l.OptIn})
	})
	return l, err
}

// UpdateList changes a list.
func (s *Service) UpdateList(ctx context.Context, actor audit.Actor, slug string, p ListParams) (*List, error) {
	var l *List
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		var err error
		if l, err = UpdateList(ctx, tx, slug, p); err != nil {
			return err
		}
		return record(ctx, tx, actor, "list.update", "list", l.Slug, map[string]any{"list_id": l.ID, "fields": p.fields(),
			"consent_version": l.ConsentVersion})
	})
	return l, err
}

// DeleteList removes a list and its memberships; consent records stay.
func (s *Service) DeleteList(ctx context.Context, actor audit.Actor, slug string) error {
	return pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		if err := DeleteList(ctx, tx, slug); err != nil {
			return err
		}
		return record(ctx, tx, actor, "list.delete", "list", slug, nil)
	})
}

// Create makes a subscriber.
func (s *Service) Create(ctx context.Context, actor audit.Actor, p SubscriberParams) (*Subscriber, error) {
	var sub *Subscriber
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		var err error
		if sub, err = Create(ctx, tx, p); err != nil {
			return err
		}
		// Field names only: the log outlives an erasure.
		return record(ctx, tx, actor, "subscriber.create", "subscriber", strconv.FormatInt(sub.ID, 10), map[string]any{"fields": p.fields()})
	})
	return sub, err
}

// Update changes a subscriber.
func (s *Service) Update(ctx context.Context, actor audit.Actor, id int64, p SubscriberParams) (*Subscriber, error) {
	var sub *Subscriber
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		var err error
		if sub, err = Update(ctx, tx, id, p); err != nil {
			return err
		}
		return record(ctx, tx, actor, "subscriber.update", "subscriber", strconv.FormatInt(id, 10), map[string]any{"fields": p.fields()})
	})
	return sub, err
}

// MarkTestDevice marks a subscriber's device as a test device, or no longer.
func (s *Service) MarkTestDevice(ctx context.Context, actor audit.Actor, subscriberID, deviceID int64, test bool) (*Device, error) {
	var d *Device
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		var err error
		if d, err = MarkTestDevice(ctx, tx, subscriberID, deviceID, test); err != nil {
			return err
		}
		return record(ctx, tx, actor, "device.test_flag", "subscriber", strconv.FormatInt(subscriberID, 10),
			map[string]any{"device_id": deviceID, "test_device": test})
	})
	return d, err
}

// CreateImport stores an upload and queues its import job in one
// transaction: the job never runs for an import that was not stored, and
// every stored import gets its job.
func (s *Service) CreateImport(ctx context.Context, actor audit.Actor, filename string, body io.Reader, maxBytes int64) (*Import, error) {
	var imp *Import
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		var err error
		if imp, err = CreateImport(ctx, tx, filename, body, maxBytes); err != nil {
			return err
		}
		if _, err := s.river.InsertTx(ctx, tx, ImportArgs{ImportID: imp.ID}, nil); err != nil {
			return fmt.Errorf("subscribers: queue import %d: %w", imp.ID, err)
		}
		return record(ctx, tx, actor, "import.create", "import", strconv.FormatInt(imp.ID, 10), nil)
	})
	return imp, err
}

// fields names the fields p sets, for the audit log.
func (p *ListParams) fields() []string {
	var f []string
	for _, x := range []struct {
		name string
		set  bool
	}{{"slug", p.Slug != nil}, {"name", p.Name != nil}, {"description", p.Description != nil},
		{"visibility", p.Visibility != nil}, {"optin", p.OptIn != nil}, {"consent_text", p.ConsentText != nil}} {
		if x.set {
			f = append(f, x.name)
		}
	}
	return f
}

// fields names the fields p sets, for the audit log (never their values:
// they are personal data).
func (p *SubscriberParams) fields() []string {
	var f []string
	for _, x := range []struct {
		name string
		set  bool
	}{{"external_id", p.ExternalID != nil}, {"email", p.Email != nil}, {"locale", p.Locale != nil},
		{"timezone", p.Timezone != nil}, {"attributes", p.Attributes != nil}, {"state", p.State != nil}} {
		if x.set {
			f = append(f, x.name)
		}
	}
	return f
}
