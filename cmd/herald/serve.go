package main

import (
	"context"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/herald-im/herald/apps"
	"github.com/herald-im/herald/audit"
	"github.com/herald-im/herald/campaigns"
	"github.com/herald-im/herald/config"
	"github.com/herald-im/herald/conversations"
	"github.com/herald-im/herald/database"
	"github.com/herald-im/herald/delivery"
	"github.com/herald-im/herald/delivery/simulator"
	"github.com/herald-im/herald/lease"
	"github.com/herald-im/herald/live"
	"github.com/herald-im/herald/migrations"
	"github.com/herald-im/herald/optin"
	"github.com/herald-im/herald/secrets"
	"github.com/herald-im/herald/subscribers"
	"github.com/herald-im/herald/users"
	"github.com/herald-im/herald/web"
	"github.com/herald-im/herald/webhooks"
)

func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	apiOnly := fs.Bool("api-only", false, "serve HTTP only; run no River workers")
	workersOnly := fs.Bool("workers-only", false, "run River workers only; serve no HTTP")
	seedDemoFlag := fs.Bool("seed-demo", false, "create a demo list when the database has none")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *apiOnly && *workersOnly {
		return errors.New("--api-only and --workers-only exclude each other")
	}
	cfg, err := config.Load(true)
	if err != nil {
		return err
	}
	logger := newLogger(cfg.LogLevel)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	pool, err := openMigrated(ctx, cfg.DatabaseURL, logger)
	if err != nil {
		return err
	}
	defer pool.Close()

	appStore := apps.NewStore(cfg.Secret)
	defaultApp, err := appStore.EnsureDefault(ctx, pool, cfg.VAPIDSubject)
	if err != nil {
		return err
	}
	var roots *x509.CertPool
	var sim *simulator.Server
	if cfg.Simulator {
		sim, err = simulator.Start(simulator.Config{Listen: cfg.SimulatorListen, Logger: logger, Secret: secrets.Derive(cfg.Secret, "simulator")})
		if err != nil {
			return err
		}
		defer sim.Close()
		took, err := useSimulator(ctx, pool, appStore, defaultApp.ID, sim)
		if err != nil {
			return err
		}
		roots = sim.CertPool()
		logger.Info("provider simulator running: these platforms of the default app go to it, not to Apple or Google; "+
			"platforms with real credentials are left alone", "simulator_url", sim.URL, "simulated", took)
	}

	if cfg.ProviderCAFile != "" {
		pem, err := os.ReadFile(cfg.ProviderCAFile)
		if err != nil {
			return fmt.Errorf("read HERALD_PROVIDER_CA_FILE: %w", err)
		}
		if roots == nil {
			if roots, err = x509.SystemCertPool(); err != nil {
				roots = x509.NewCertPool()
			}
		}
		if !roots.AppendCertsFromPEM(pem) {
			return fmt.Errorf("HERALD_PROVIDER_CA_FILE holds no PEM certificate")
		}
	}

	registry := prometheus.NewRegistry()
	registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	outcomes := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "herald_delivery_outcomes_total", Help: "Push sends by platform and outcome class.",
	}, []string{"platform", "class"})
	registry.MustRegister(outcomes)

	// Web Push endpoints are URLs a subscriber chooses: they may point only
	// at the push services, and never into a private network, except for
	// the simulator that make run starts.
	webPush := &delivery.EndpointPolicy{Hosts: cfg.WebPushHosts, AllowPrivate: cfg.WebPushPrivateNetworks}
	if sim != nil {
		if err := allowSimulator(webPush, sim.URL); err != nil {
			return err
		}
	}
	senders := apps.NewSenders(pool, appStore, delivery.Options{RootCAs: roots, WebPush: webPush}, logger)
	var mailer optin.Mailer
	if cfg.SMTPURL != "" {
		if mailer, err = optin.NewSMTPMailer(cfg.SMTPURL, cfg.SMTPFrom); err != nil {
			return err
		}
	}
	// Services insert their jobs through an insert-only client; the working
	// client below needs their workers, so it comes after them.
	inserter, err := database.NewInserter(pool, logger)
	if err != nil {
		return err
	}
	optinSvc := optin.NewService(pool, inserter, appStore, senders, mailer, optin.Config{
		PublicURL: cfg.PublicURL, Secret: cfg.Secret, ConfirmTokenTTL: cfg.ConfirmTokenTTL,
		UnsubscribeTokenTTL: cfg.UnsubscribeTokenTTL, SubscriberTokenTTL: cfg.SubscriberTokenTTL,
		PendingPurgeAfter: cfg.PendingPurgeAfter, WebPush: webPush, Attachments: attachmentStorage(cfg),
		OnErase: []func(context.Context, pgx.Tx, int64) error{webhooks.EraseSubscriber},
	}, logger)

	subscriberSvc := subscribers.NewService(pool, inserter, logger)
	usersSvc := users.NewService(pool, usersConfig(cfg), logger)
	registry.MustRegister(usersSvc.Collectors()...)

	campaignSvc := campaigns.NewService(pool, inserter, senders, optinSvc, campaigns.Config{
		PublicURL: cfg.PublicURL, Secret: cfg.Secret, BatchSize: cfg.BatchSize, DeliveryRetention: cfg.DeliveryRetention,
	}, logger)
	registry.MustRegister(campaignSvc.Collectors()...)

	// Live events: committed changes are announced with a debounced
	// NOTIFY (never one per write transaction) and fanned out by the hub.
	notifier := audit.NewNotifier(pool, 20*time.Millisecond, logger)
	go notifier.Run(ctx)
	conversationSvc := conversations.NewService(pool, inserter, senders, conversations.Config{
		Secret: cfg.Secret, PublicURL: cfg.PublicURL, Storage: attachmentStorage(cfg), Notifier: notifier, Consent: optinSvc,
	}, logger)
	registry.MustRegister(conversationSvc.Collectors()...)
	webhookSvc := webhooks.NewService(pool, inserter, webhooks.Config{Secret: cfg.Secret, AllowPrivate: cfg.WebhookPrivateNetworks}, logger)
	registry.MustRegister(webhookSvc.Collectors()...)
	hubCtx, stopHub := context.WithCancel(context.WithoutCancel(ctx))
	defer stopHub()
	hub := live.NewHub(pool, live.Config{Channels: []string{conversations.PresenceChannel}}, logger)
	registry.MustRegister(hub.Collectors()...)

	// A worker process holds a stable identity for as long as it lives, and
	// takes back at once the jobs it left running when it last stopped
	// abruptly, instead of waiting for River's rescuer.
	var identity *lease.Lease
	lost := make(chan error, 1)
	if !*apiOnly {
		// The identity must outlive the signal: jobs still finish their
		// slices under it while the process drains. Close releases it.
		identity, err = lease.Acquire(context.WithoutCancel(ctx), pool, lease.Config{ID: cfg.WorkerID, Version: versionString(), Logger: logger,
			OnLost: func(err error) { lost <- err }})
		if err != nil {
			return fmt.Errorf("worker identity: %w", err)
		}
		defer func() {
			closeCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := identity.Close(closeCtx); err != nil {
				logger.Warn("release worker identity", "error", err)
			}
		}()
		if n, err := identity.HandBack(ctx); err != nil {
			return fmt.Errorf("hand back jobs of the last run: %w", err)
		} else if n > 0 {
			logger.Warn("jobs this worker identity left running when it last stopped were handed back",
				"worker_id", identity.ID(), "count", n)
		}
	}
	riverClient, err := newRiverClient(cfg, pool, logger, optinSvc, campaignSvc, usersSvc, conversationSvc, webhookSvc, identity, func(o delivery.Outcome) {
		outcomes.WithLabelValues(string(o.Platform), string(o.Class)).Inc()
	})
	if err != nil {
		return err
	}

	if *seedDemoFlag {
		if err := seedDemo(ctx, pool, defaultApp.ID, sim, logger); err != nil {
			return fmt.Errorf("seed demo data: %w", err)
		}
	}

	if !*apiOnly {
		// Not the signal context: cancelling Start's context is River's hard
		// stop, which would cut every running job off mid-send. Stop below
		// is the soft one.
		if err := riverClient.Start(context.WithoutCancel(ctx)); err != nil {
			return fmt.Errorf("start river: %w", err)
		}
		go handBackDead(ctx, pool, logger)
		// Webhook deliveries are River jobs, written from the outbox by a
		// dispatcher in every worker process (one at a time per page).
		go webhookSvc.RunDispatcher(ctx, 500*time.Millisecond)
	}
	errc := make(chan error, 1)
	var app interface {
		ShutdownWithTimeout(time.Duration) error
	}
	if !*workersOnly {
		go func() {
			if err := hub.Run(hubCtx); err != nil {
				logger.Error("live hub stopped", "error", err)
			}
		}()
		httpApp := web.New(web.Deps{Senders: senders,
			Config: cfg, Pool: pool, River: riverClient, OptIn: optinSvc, Campaigns: campaignSvc, Apps: appStore, Subscribers: subscriberSvc, Users: usersSvc,
			Conversations: conversationSvc, Hub: hub, Webhooks: webhookSvc, Logger: logger,
			Registry: registry, Ready: func(ctx context.Context) error { return ready(ctx, pool) }, Background: hubCtx,
		})
		app = httpApp
		go func() { errc <- web.Listen(httpApp, cfg.Listen) }()
		logger.Info("herald is serving", "url", cfg.PublicURL, "listen", cfg.Listen, "version", versionString())
		fmt.Fprintf(os.Stderr, "\nHerald is up.\n  Console:      %s/console\n  Sign in:      %s/sign-in\n  API:          %s/api/v1 (described at %s/api/v1/openapi.json)\n  River UI:     %s/console/river/ (admins)\n  Health:       %s/readyz\n  Opt-in page:  %s/l/news (the demo list, with --seed-demo)\n  Metrics:      %s/metrics\n\n",
			cfg.PublicURL, cfg.PublicURL, cfg.PublicURL, cfg.PublicURL, cfg.PublicURL, cfg.PublicURL, cfg.PublicURL, cfg.PublicURL)
	}

	if cfg.MetricsListen != "" {
		// Metrics on their own address, in worker processes too.
		metricsApp := web.NewMetrics(registry, logger)
		go func() {
			if err := metricsApp.Listen(cfg.MetricsListen); err != nil {
				errc <- fmt.Errorf("metrics listener: %w", err)
			}
		}()
		defer func() {
			if err := metricsApp.ShutdownWithTimeout(time.Second); err != nil {
				logger.Warn("metrics listener shutdown", "error", err)
			}
		}()
		logger.Info("metrics are served", "metrics_listen", cfg.MetricsListen)
	}

	var runErr error
	grace := cfg.ShutdownGrace
	select {
	case <-ctx.Done():
	case err := <-errc:
		if err != nil {
			runErr = fmt.Errorf("http: %w", err)
		}
	case err := <-lost:
		// Another process took this identity while the lock's connection
		// was down and may hand back our running jobs: stop at once rather
		// than let two processes work them.
		runErr, grace = fmt.Errorf("worker identity lost: %w", err), time.Second
	}
	// Event streams end first (clients reconnect elsewhere with
	// Last-Event-ID); an open stream would hold the HTTP shutdown.
	stopHub()
	shutdown(logger, grace, app, campaignSvc, riverClient, !*apiOnly)
	return runErr
}

// shutdown stops gracefully within grace: HTTP stops accepting and finishes
// its requests while running jobs finish the slice they are sending, record
// it and give the rest back to River; then River stops. Only when grace
// runs out are running jobs cancelled: what they had in flight is recorded
// as unknown (it may have arrived) or released (it never left), and the
// next process resumes from there. A second signal cuts the wait short.
func shutdown(logger *slog.Logger, grace time.Duration, app interface{ ShutdownWithTimeout(time.Duration) error },
	campaignSvc *campaigns.Service, riverClient *river.Client[pgx.Tx], workers bool) {
	started := time.Now()
	logger.Info("shutting down", "grace", grace.String())
	campaignSvc.Drain()
	again := make(chan os.Signal, 1)
	signal.Notify(again, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(again)
	graceCtx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	go func() {
		select {
		case <-again:
			logger.Warn("second signal: cutting the graceful stop short")
			cancel()
		case <-graceCtx.Done():
		}
	}()
	done := make(chan struct{})
	go func() {
		defer close(done)
		if app != nil {
			if err := app.ShutdownWithTimeout(grace); err != nil {
				logger.Error("http shutdown", "error", err)
			}
		}
	}()
	if workers {
		if err := riverClient.Stop(graceCtx); err != nil {
			logger.Warn("grace period over; cancelling running jobs, whose requests in flight are recorded as unknown",
				"error", err, "waited", time.Since(started).String())
			// Cancelled jobs still record what they know; give them that long.
			cancelCtx, cancelStop := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancelStop()
			if err := riverClient.StopAndCancel(cancelCtx); err != nil {
				logger.Error("river did not stop", "error", err)
			}
		}
	}
	<-done
	logger.Info("stopped", "took", time.Since(started).String())
}

// handBackDead hands back, every half minute, jobs left running by worker
// identities that are no longer alive (their lock is free and their
// heartbeat old), for hosts that do not come back under the same name.
func handBackDead(ctx context.Context, pool *pgxpool.Pool, logger *slog.Logger) {
	t := time.NewTicker(30 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, err := lease.HandBackDead(ctx, pool, 90*time.Second, logger); err != nil && ctx.Err() == nil {
			logger.Error("hand back jobs of dead workers", "error", err)
		}
	}
}

// allowSimulator lets Web Push reach the in-process simulator (at a loopback
// address) and nothing else that is private.
func allowSimulator(p *delivery.EndpointPolicy, simURL string) error {
	u, err := url.Parse(simURL)
	if err != nil {
		return fmt.Errorf("simulator address: %w", err)
	}
	addr, err := netip.ParseAddrPort(u.Host)
	if err != nil {
		return fmt.Errorf("simulator address: %w", err)
	}
	p.AllowAddrs = append(p.AllowAddrs, addr)
	hosts := p.Hosts
	if len(hosts) == 0 {
		hosts = delivery.DefaultWebPushHosts
	}
	p.Hosts = append(slices.Clone(hosts), addr.Addr().String())
	return nil
}

// attachmentStorage is where attachment bytes go: a directory if
// HERALD_ATTACHMENT_DIR names one, else PostgreSQL.
func attachmentStorage(cfg *config.Config) conversations.Storage {
	if cfg.AttachmentDir != "" {
		return conversations.DiskStorage{Dir: cfg.AttachmentDir}
	}
	return conversations.PostgresStorage{}
}

func ready(ctx context.Context, pool *pgxpool.Pool) error {
	if err := pool.Ping(ctx); err != nil {
		return fmt.Errorf("database: %w", err)
	}
	return migrations.Check(ctx, pool)
}

// newRiverClient builds the River client; without an identity it only
// inserts.
func newRiverClient(conf *config.Config, pool *pgxpool.Pool, logger *slog.Logger, optinSvc *optin.Service, campaignSvc *campaigns.Service,
	usersSvc *users.Service, conversationSvc *conversations.Service, webhookSvc *webhooks.Service, identity *lease.Lease,
	observe optin.DeliveryObserver) (*river.Client[pgx.Tx], error) {
	workers := river.NewWorkers()
	conversationSvc.AddWorkers(workers)
	webhookSvc.AddWorkers(workers)
	optinSvc.AddWorkers(workers, observe)
	campaignSvc.AddWorkers(workers, observe)
	usersSvc.AddWorkers(workers)
	river.AddWorker(workers, &subscribers.ImportWorker{Pool: pool, Logger: logger})
	river.AddWorker(workers, &database.AnalyzeWorker{DB: pool, Logger: logger})
	river.AddWorker(workers, &audit.PurgeOutboxWorker{DB: pool, Logger: logger})
	cfg := &river.Config{Workers: workers, Logger: logger, JobTimeout: conf.JobTimeout, RescueStuckJobsAfter: conf.RescueStuckAfter}
	if identity != nil {
		cfg.ID = identity.ID()
		// Separate queues so a big import never holds up a confirmation. The
		// fetch cooldown is lowered from 100 ms, which would cap a queue at
		// about MaxWorkers x 10 jobs per second.
		cfg.Queues = map[string]river.QueueConfig{
			river.QueueDefault:       {MaxWorkers: 10},
			optin.QueueOptIn:         {MaxWorkers: 50},
			subscribers.QueueImports: {MaxWorkers: 2},
		}
		// Fan-out, and one queue per provider for batches; each batch job's
		// requests in flight are bounded by the app's sender.
		for name, q := range campaigns.Queues(8) {
			cfg.Queues[name] = q
		}
		// Conversation pushes have workers of their own: a broadcast that
		// fills the campaign queues never delays an answer.
		for name, q := range conversations.Queues(20) {
			cfg.Queues[name] = q
		}
		for name, q := range webhooks.Queues(10) {
			cfg.Queues[name] = q
		}
		cfg.FetchCooldown = 20 * time.Millisecond
		cfg.PeriodicJobs = []*river.PeriodicJob{optin.PurgePeriodicJob(), campaigns.ReconcilePeriodicJob(), campaigns.RetentionPeriodicJob(), database.AnalyzePeriodicJob(),
			users.PurgePeriodicJob()}
		cfg.PeriodicJobs = append(cfg.PeriodicJobs, conversations.PeriodicJobs()...)
		cfg.PeriodicJobs = append(cfg.PeriodicJobs, audit.PurgeOutboxPeriodicJob())
	}
	c, err := river.NewClient(riverpgxv5.New(pool), cfg)
	if err != nil {
		return nil, fmt.Errorf("river client: %w", err)
	}
	return c, nil
}

// useSimulator points the default app's APNs and FCM at the simulator,
// unless real credentials are configured for them, and returns the platforms
// it took over. An APNs key made earlier is kept, so restarts change nothing.
func useSimulator(ctx context.Context, pool *pgxpool.Pool, store *apps.Store, appID int64, sim *simulator.Server) ([]string, error) {
	const team, keyID = "HERALDSIM1", "SIMKEY0001"
	var took []string
	// Development wiring, not an operator's change: no event for webhooks.
	change := audit.Change{Action: "app.credentials.simulator", ObjectType: "app", ObjectID: apps.DefaultSlug, NoEvent: true}
	err := store.UpdateSecrets(ctx, pool, audit.System("provider simulator"), change, appID, func(sec *apps.Secrets) error {
		switch a := sec.Credentials.APNs; {
		case a != nil && a.TeamID == team:
			pub, err := apnsPublicKey(a.KeyP8)
			if err != nil {
				return err
			}
			sim.TrustAPNsKey(team, keyID, pub)
			a.Endpoint = sim.URL
			took = append(took, "apns")
		case a == nil:
			p8, err := sim.NewAPNsKey(team, keyID)
			if err != nil {
				return err
			}
			sec.Credentials.APNs = &delivery.APNsCredentials{KeyP8: p8, KeyID: keyID, TeamID: team, Topic: "com.example.herald", Endpoint: sim.URL}
			took = append(took, "apns")
		}
		if f := sec.Credentials.FCM; f == nil || f.ServiceAccountJSON == "" {
			sec.Credentials.FCM = &delivery.FCMCredentials{ProjectID: sim.FCMProject, Endpoint: sim.URL, AccessToken: sim.FCMAccessToken}
			took = append(took, "fcm")
		}
		return nil
	})
	return took, err
}
