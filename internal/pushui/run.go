package pushui

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"time"

	"github.com/pushpull/pushpull/blobstore"
	"github.com/pushpull/pushpull/internal/cli"
	"github.com/pushpull/pushpull/internal/fleet"
	"github.com/pushpull/pushpull/internal/nudge"
	"github.com/pushpull/pushpull/internal/pushui/auth"
	"github.com/pushpull/pushpull/manifest"
	"google.golang.org/api/idtoken"
)

// DefaultAddr is where pushui listens unless told otherwise: loopback only.
const DefaultAddr = "127.0.0.1:8000"

// Config is pushui's command line.
type Config struct {
	Bucket                  string         // bucket URL (required)
	ConfigFile              string         // push config JSON written to the bucket when it holds none; "" = use the bucket's
	AllowUnconditionalStore bool           // start on an S3 store that ignores conditional writes (a single writer only)
	Addr                    string         // listen address; DefaultAddr when empty
	AuthHeader              string         // trusted identity header set by an auth proxy
	TrustedProxies          []netip.Prefix // peers allowed to set AuthHeader; required off loopback
	HtpasswdFile            string         // htpasswd file of bcrypt hashes, for Basic auth
	IAPAudience             string         // verify Identity-Aware Proxy's signed header for this audience
	Admins                  []string       // users who may change manifests
	NudgeTopic              string         // gocloud.dev/pubsub topic URL for nudges
	NudgeURL                string         // HTTP nudge URL template ({server})
	NudgeGCE                string         // PROJECT/ZONE of the GCE instances nudged by metadata (instance name = server name)
	Refresh                 time.Duration  // background re-listing interval; 0 = only on demand
	RolloutTick             time.Duration  // how often rollouts move; 0 = DefaultRolloutTick
	Logger                  *slog.Logger   // required
}

// Check validates cfg without touching anything: required fields, one
// authentication mode at most, admins only with authentication, and no
// listening beyond loopback without authentication, nor with an identity
// header that any peer could set.
func (cfg *Config) Check() error {
	if cfg.Addr == "" {
		cfg.Addr = DefaultAddr
	}
	modes := countTrue(cfg.AuthHeader != "", cfg.HtpasswdFile != "", cfg.IAPAudience != "")
	switch {
	case cfg.Bucket == "":
		return fmt.Errorf("pushui: %w: -bucket is required", cli.ErrUsage)
	case modes > 1:
		return fmt.Errorf("pushui: %w: give one of -auth-header, -htpasswd and -iap-audience, not several", cli.ErrUsage)
	case len(cfg.Admins) > 0 && modes == 0:
		return fmt.Errorf("pushui: %w: -admins needs -auth-header, -htpasswd or -iap-audience to know who is who", cli.ErrUsage)
	case len(cfg.TrustedProxies) > 0 && cfg.AuthHeader == "":
		return fmt.Errorf("pushui: %w: -trusted-proxy says who may set -auth-header; give -auth-header too", cli.ErrUsage)
	case cfg.Refresh < 0:
		return fmt.Errorf("pushui: %w: -refresh must not be negative", cli.ErrUsage)
	case cfg.RolloutTick < 0:
		return fmt.Errorf("pushui: %w: -rollout-tick must not be negative", cli.ErrUsage)
	}
	loop, err := isLoopback(cfg.Addr)
	if err != nil {
		return fmt.Errorf("pushui: %w: -addr %s: %v", cli.ErrUsage, cfg.Addr, err)
	}
	switch {
	case !loop && modes == 0:
		return fmt.Errorf("pushui: %w: refusing to listen on %s without authentication: give -iap-audience (behind Identity-Aware Proxy), -auth-header with -trusted-proxy (behind another auth proxy) or -htpasswd, or listen on 127.0.0.1", cli.ErrUsage, cfg.Addr)
	case !loop && cfg.AuthHeader != "" && len(cfg.TrustedProxies) == 0:
		return fmt.Errorf("pushui: %w: -auth-header on %s needs -trusted-proxy CIDR[,CIDR…]: otherwise anyone who reaches the port can send %s and be whoever they say", cli.ErrUsage, cfg.Addr, cfg.AuthHeader)
	}
	return nil
}

// isLoopback reports whether addr's host is certainly a loopback address:
// a loopback IP or "localhost". An empty host (every interface) and other
// names are not.
func isLoopback(addr string) (bool, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false, err
	}
	if host == "localhost" {
		return true, nil
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback(), nil
}

// Run serves pushui until ctx is done, then shuts down gracefully. It logs
// "listening" with the bound address once it accepts connections.
func Run(ctx context.Context, cfg Config) error {
	if cfg.Logger == nil {
		return fmt.Errorf("pushui: %w: no logger", cli.ErrUsage)
	}
	if err := cfg.Check(); err != nil {
		return err
	}
	log := cfg.Logger
	opts := Options{AuthHeader: cfg.AuthHeader, TrustedProxies: cfg.TrustedProxies, IAPAudience: cfg.IAPAudience, Admins: cfg.Admins, Logger: log, RolloutTick: cfg.RolloutTick}
	if cfg.IAPAudience != "" {
		v, err := idtoken.NewValidator(ctx)
		if err != nil {
			return fmt.Errorf("pushui: IAP validator: %w", err)
		}
		opts.IAP = v
	}
	if cfg.ConfigFile != "" {
		data, err := os.ReadFile(cfg.ConfigFile)
		if err != nil {
			return fmt.Errorf("pushui: read push config: %w", err)
		}
		if opts.Config, err = manifest.ParsePushConfig(data); err != nil {
			return fmt.Errorf("pushui: %s: %w", cfg.ConfigFile, err)
		}
	}
	if cfg.HtpasswdFile != "" {
		data, err := os.ReadFile(cfg.HtpasswdFile)
		if err != nil {
			return fmt.Errorf("pushui: read htpasswd: %w", err)
		}
		if opts.Htpasswd, err = auth.ParseHtpasswd(data); err != nil {
			return fmt.Errorf("pushui: %s: %w", cfg.HtpasswdFile, err)
		}
	}
	if (cfg.AuthHeader != "" || cfg.HtpasswdFile != "" || cfg.IAPAudience != "") && len(cfg.Admins) == 0 {
		log.Warn("no -admins: everyone can look, nobody can change anything")
	}

	store, err := blobstore.Open(ctx, cfg.Bucket)
	if err != nil {
		return err // it names its package and the reason
	}
	defer store.Close()
	opts.Store = store
	if err := fleet.CheckStore(ctx, store, cfg.AllowUnconditionalStore, log); err != nil {
		return err // it names its package and the reason
	}

	nudger, err := nudge.New(ctx, nudge.Config{Topic: cfg.NudgeTopic, URL: cfg.NudgeURL, GCE: cfg.NudgeGCE, Logger: log})
	if err != nil {
		return err // it names its package and the reason
	}
	defer func() { _ = nudger.Close(context.WithoutCancel(ctx)) }()
	if nudger.Enabled() {
		opts.Nudger = nudger
	}

	srv, err := New(ctx, opts)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("pushui: %w", err)
	}
	hs := &http.Server{
		Handler:           srv,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		WriteTimeout:      2 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	if cfg.Refresh > 0 {
		go every(ctx, cfg.Refresh, func() {
			if err := srv.Refresh(ctx); err != nil && ctx.Err() == nil {
				log.Warn("background refresh failed", "err", err)
			}
		})
	}
	go srv.DriveRollouts(ctx)
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	log.Info("listening", "addr", ln.Addr().String(), "bucket", cfg.Bucket, "servers", len(srv.svc.View.Load().Order), "auth", authMode(cfg), "nudge", nudger.Enabled())
	select {
	case err := <-errc:
		return fmt.Errorf("pushui: serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		return fmt.Errorf("pushui: shutdown: %w", err)
	}
	log.Info("stopped")
	return nil
}

func authMode(cfg Config) string {
	switch {
	case cfg.IAPAudience != "":
		return "iap " + cfg.IAPAudience
	case cfg.AuthHeader != "":
		return "header " + cfg.AuthHeader
	case cfg.HtpasswdFile != "":
		return "htpasswd"
	}
	return "none (loopback)"
}
