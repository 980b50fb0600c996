package pushui

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/pushpull/pushpull/blobstore"
	"github.com/pushpull/pushpull/internal/fleet"
	"github.com/pushpull/pushpull/internal/fleetview"
	"github.com/pushpull/pushpull/internal/pushui/api"
	"github.com/pushpull/pushpull/internal/pushui/auth"
	"github.com/pushpull/pushpull/internal/pushui/ops"
	"github.com/pushpull/pushpull/internal/pushui/web"
	"github.com/pushpull/pushpull/manifest"
	"google.golang.org/api/idtoken"
)

// Options configures a Server.
type Options struct {
	// Store is the bucket. Required. The Server does not close it.
	Store *blobstore.Store
	// Config, when set, bootstraps the push config: it is written to the
	// bucket (config/push.json) when the bucket holds none. The bucket's
	// config is the one obeyed, and followed as it changes; a different
	// Config is then only warned about. With no config in the bucket,
	// Config is required.
	Config *manifest.PushConfig
	// AuthHeader names a request header carrying the user's identity, set
	// by an authenticating proxy (IAP, oauth2-proxy). pushui trusts it
	// blindly: it must only be reachable through that proxy.
	AuthHeader string
	// TrustedProxies, with AuthHeader, are the peers allowed to set it:
	// a request from any other address is refused (401) whatever headers
	// it carries. Empty trusts every peer, which Run allows only on a
	// loopback listener.
	TrustedProxies []netip.Prefix
	// Htpasswd, when set, requires HTTP Basic authentication against it.
	Htpasswd *auth.Htpasswd
	// IAP, when set, requires the signed x-goog-iap-jwt-assertion header
	// of Google's Identity-Aware Proxy, verified by it with IAPAudience as
	// the audience; the user is the token's email claim. At most one of
	// AuthHeader, Htpasswd and IAP may be set; with none, every request is
	// served as LocalUser, who may write.
	IAP         *idtoken.Validator
	IAPAudience string
	// Admins may change manifests; other authenticated users may only look.
	Admins []string
	// Nudger is told about every server whose manifest changed; nil sends
	// no nudges (hosts then act at their next poll).
	Nudger Nudger
	// Logger receives the server's logs. Required.
	Logger *slog.Logger
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// RolloutTick is how often DriveRollouts moves the rollouts; 0 means
	// DefaultRolloutTick. The lease a replica holds on a rollout lasts six
	// ticks.
	RolloutTick time.Duration
}

// Server is pushui's HTTP handler: the web UI and the JSON API over one
// bucket. It keeps the bucket's state in memory (see Refresh). It is safe
// for concurrent use.
type Server struct {
	svc     *ops.Service
	web     *web.Handler
	api     *api.Handler
	auth    *auth.Gate
	metrics *prometheus.Registry
	handler http.Handler
}

// New returns a Server for opts, after listing the bucket once (the error
// is that listing's).
func New(ctx context.Context, opts Options) (*Server, error) {
	if opts.Store == nil {
		return nil, errors.New("pushui: no bucket")
	}
	return newServer(ctx, opts.Store, opts)
}

// newServer is New over any bucket; tests use it to count requests.
func newServer(ctx context.Context, b fleetview.Bucket, opts Options) (*Server, error) {
	if opts.Store == nil {
		return nil, errors.New("pushui: no bucket")
	}
	if opts.Logger == nil {
		return nil, errors.New("pushui: no logger")
	}
	if opts.Config != nil {
		if err := opts.Config.Validate(); err != nil {
			return nil, fmt.Errorf("pushui: %w", err)
		}
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	svc, err := ops.New(ctx, ops.Options{Store: opts.Store, Bucket: b, Config: opts.Config, Nudger: opts.Nudger, Logger: opts.Logger, Now: now, RolloutTick: opts.rolloutTick()})
	if err != nil {
		return nil, err
	}
	s := &Server{svc: svc, metrics: prometheus.NewRegistry()}
	if s.auth, err = auth.New(auth.Options{Header: opts.AuthHeader, TrustedProxies: opts.TrustedProxies, Htpasswd: opts.Htpasswd,
		IAP: opts.IAP, IAPAudience: opts.IAPAudience, Admins: opts.Admins, Logger: opts.Logger, Now: now, Metrics: s.metrics}); err != nil {
		return nil, err
	}
	if s.web, err = web.New(svc, s.failErr); err != nil {
		return nil, err
	}
	s.api = api.New(svc, s.failErr, s.web.APIReference)
	s.handler = s.routes()
	if err := svc.View.Refresh(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// Refresh lists the bucket again: servers, manifests, statuses and package
// names. Package metadata already fetched is kept (packages never change).
// The pages keep showing the previous state until it completes; on error
// they keep it.
func (s *Server) Refresh(ctx context.Context) error {
	s.svc.ReloadConfig(ctx)
	return s.svc.View.Refresh(ctx)
}

// ServeHTTP serves the UI and the API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	s.web.Mount(mux)
	s.api.Mount(mux)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.metrics, promhttp.HandlerOpts{}))
	return securityHeaders(s.auth.Protect(mux, s.fail))
}

// securityHeaders sets headers that keep the pages from being framed,
// sniffed or made to run scripts other than pushui's own static file.
func securityHeaders(h http.Handler) http.Handler {
	const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
		"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", csp)
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "same-origin")
		hd.Set("Cross-Origin-Opener-Policy", "same-origin")
		hd.Set("Cross-Origin-Resource-Policy", "same-origin")
		h.ServeHTTP(w, r)
	})
}

func countTrue(bs ...bool) int {
	n := 0
	for _, b := range bs {
		if b {
			n++
		}
	}
	return n
}

// fail answers an error: JSON under /api/, a page elsewhere.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, code int, msg string) {
	if strings.HasPrefix(r.URL.Path, "/api/") {
		api.WriteError(w, code, msg)
		return
	}
	s.web.Fail(w, r, code, msg)
}

// failErr answers err with the status its kind calls for (statusOf),
// logging the failures that are not the caller's.
func (s *Server) failErr(w http.ResponseWriter, r *http.Request, err error) {
	code := statusOf(err)
	if code == http.StatusBadGateway {
		s.svc.Log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	s.fail(w, r, code, err.Error())
}

// statusOf is the HTTP status an error of the write path calls for: 400
// for input the user can fix, 404 for an unknown server or group, 412 for
// a manifest changed since it was read, 409 for a manifest that does not
// parse or a state that refuses the request, 502 for the rest (the bucket
// failed).
func statusOf(err error) int {
	var in *ops.InputError
	switch {
	case errors.As(err, &in):
		return http.StatusBadRequest
	case errors.Is(err, ops.ErrUnknown):
		return http.StatusNotFound
	case errors.Is(err, blobstore.ErrConflict):
		return http.StatusPreconditionFailed
	case errors.Is(err, ops.ErrBrokenManifest), errors.Is(err, ops.ErrState):
		return http.StatusConflict
	}
	return http.StatusBadGateway
}

// Nudger tells servers' pulld that their manifest changed, so they act
// within a second instead of at their next poll. *nudge.Nudger implements
// it. Nudge must be safe for concurrent use; a failed nudge is reported but
// never undoes a write (the host still picks the change up when it polls).
type Nudger = fleet.Nudger
