package pushui

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/netip"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/api/idtoken"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/pushpull/pushpull/blobstore"
	"github.com/pushpull/pushpull/internal/fleet"
	"github.com/pushpull/pushpull/internal/rollout"
	"github.com/pushpull/pushpull/manifest"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

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
	Htpasswd *Htpasswd
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
	svc     *service
	web     *webUI
	api     *apiHandler
	auth    *auth
	metrics *prometheus.Registry
	handler http.Handler
}

// service is what pushui does, for its pages and its API alike: the view
// of the bucket, the one write path, the rollouts and the push config.
type service struct {
	b           bucket
	fleet       *fleet.Writer
	rollouts    *rollout.Driver
	rolloutTick time.Duration
	pc          atomic.Pointer[pushConfig]
	log         *slog.Logger
	now         func() time.Time
	cache       *cache
}

// serviceOptions configures a service.
type serviceOptions struct {
	Store       *blobstore.Store // the bucket the writes go to
	Bucket      bucket           // the bucket the view reads: Store, or a wrapper of it
	Config      *manifest.PushConfig
	Nudger      Nudger
	Logger      *slog.Logger
	Now         func() time.Time
	RolloutTick time.Duration
}

// newService returns the service over o.Store, after bootstrapping the push
// config (see Options.Config); its view is empty until refreshed.
func newService(ctx context.Context, o serviceOptions) (*service, error) {
	svc := &service{b: o.Bucket, log: o.Logger, now: o.Now, rolloutTick: o.RolloutTick}
	// A group's nudge spreads its members' reads over a window sized to
	// the members pushui knows of (the cache exists by the first write).
	svc.fleet = fleet.New(o.Store, fleet.Options{Nudger: o.Nudger, Logger: o.Logger, Now: o.Now,
		Members: func(g string) int { return len(svc.cache.load().members(g)) },
		AbortRollout: func(ctx context.Context, group, env, id, user string) error {
			_, err := svc.rollouts.Command(ctx, blobstore.RolloutRef{Group: group, Env: env, ID: id}, rollout.Abort, user)
			return err
		}})
	svc.rollouts = svc.newDriver(o.Store, o.RolloutTick)
	if err := svc.bootstrapConfig(ctx, o.Config); err != nil {
		return nil, err
	}
	svc.cache = newCache(o.Bucket, svc.conf, o.Logger, o.Now)
	return svc, nil
}

// newWebUI returns the pages over svc; failErr answers the errors of
// their writes.
func newWebUI(svc *service, failErr func(http.ResponseWriter, *http.Request, error)) (*webUI, error) {
	s := &webUI{service: svc, failErrHook: failErr, bufs: sync.Pool{New: func() any { return new(bytes.Buffer) }}, staticVersion: staticHash()}
	if err := s.parseTemplates(); err != nil {
		return nil, err
	}
	return s, nil
}

// newAPIHandler returns the JSON API over svc; failErr answers the errors
// of its writes, and page renders its reference for a browser.
func newAPIHandler(svc *service, failErr func(http.ResponseWriter, *http.Request, error), page func(http.ResponseWriter, *http.Request, []apiRoute)) *apiHandler {
	return &apiHandler{service: svc, failErrHook: failErr, page: page}
}

// webUI serves the pages.
type webUI struct {
	*service
	failErrHook   func(http.ResponseWriter, *http.Request, error)
	pages         map[string]*template.Template
	sections      []*template.Template // one per rendering goroutine (see renderSections)
	staticVersion string
	bufs          sync.Pool
}

// apiHandler serves the JSON API.
type apiHandler struct {
	*service
	failErrHook func(http.ResponseWriter, *http.Request, error)
	page        func(w http.ResponseWriter, r *http.Request, routes []apiRoute)
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
func newServer(ctx context.Context, b bucket, opts Options) (*Server, error) {
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
	svc, err := newService(ctx, serviceOptions{Store: opts.Store, Bucket: b, Config: opts.Config, Nudger: opts.Nudger, Logger: opts.Logger, Now: now, RolloutTick: opts.rolloutTick()})
	if err != nil {
		return nil, err
	}
	s := &Server{svc: svc, metrics: prometheus.NewRegistry()}
	if s.auth, err = newAuth(authOptions{Header: opts.AuthHeader, TrustedProxies: opts.TrustedProxies, Htpasswd: opts.Htpasswd,
		IAP: opts.IAP, IAPAudience: opts.IAPAudience, Admins: opts.Admins, Logger: opts.Logger, Now: now, Metrics: s.metrics}); err != nil {
		return nil, err
	}
	if s.web, err = newWebUI(svc, s.failErr); err != nil {
		return nil, err
	}
	s.api = newAPIHandler(svc, s.failErr, s.web.handleAPIDoc)
	s.handler = s.routes()
	if err := svc.cache.refresh(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// Refresh lists the bucket again: servers, manifests, statuses and package
// names. Package metadata already fetched is kept (packages never change).
// The pages keep showing the previous state until it completes; on error
// they keep it.
func (s *Server) Refresh(ctx context.Context) error {
	s.svc.reloadConfig(ctx)
	return s.svc.cache.refresh(ctx)
}

// ServeHTTP serves the UI and the API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	s.web.mount(mux)
	s.api.mount(mux)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.metrics, promhttp.HandlerOpts{}))
	return securityHeaders(s.auth.protect(mux, s.fail))
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
		writeAPIError(w, code, msg)
		return
	}
	s.web.fail(w, r, code, msg)
}

// failErr answers err with the status its kind calls for (statusOf),
// logging the failures that are not the caller's.
func (s *Server) failErr(w http.ResponseWriter, r *http.Request, err error) {
	code := statusOf(err)
	if code == http.StatusBadGateway {
		s.svc.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	s.fail(w, r, code, err.Error())
}

// statusOf is the HTTP status an error of the write path calls for: 400
// for input the user can fix, 404 for an unknown server or group, 412 for
// a manifest changed since it was read, 409 for a manifest that does not
// parse or a state that refuses the request, 502 for the rest (the bucket
// failed).
func statusOf(err error) int {
	var in *inputError
	switch {
	case errors.As(err, &in):
		return http.StatusBadRequest
	case errors.Is(err, errUnknown):
		return http.StatusNotFound
	case errors.Is(err, blobstore.ErrConflict):
		return http.StatusPreconditionFailed
	case errors.Is(err, errBrokenManifest), errors.Is(err, errState):
		return http.StatusConflict
	}
	return http.StatusBadGateway
}

// writeAPIError answers {"error": msg} with code.
func writeAPIError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

// writeJSON sends v as compact JSON (pipe it through jq to read it).
func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "encode response: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}

// parseTemplates parses every page once: the layout and partials shared,
// one clone per page so each can define its own "content".
func (s *webUI) parseTemplates() error {
	funcs := template.FuncMap{
		"ago":    ago,
		"utc":    utc,
		"iso":    func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
		"size":   humanSize,
		"join":   strings.Join,
		"static": func(name string) string { return "/static/" + name + "?v=" + s.staticVersion },
	}
	base, err := template.New("base").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/partials.html")
	if err != nil {
		return fmt.Errorf("pushui: parse templates: %w", err)
	}
	// The main page's sections are rendered on every CPU; text/template
	// takes a shared lock per function lookup, so each goroutine gets its
	// own copy rather than contending on one.
	s.sections = make([]*template.Template, max(1, min(runtime.NumCPU(), 16)))
	for i := range s.sections {
		if s.sections[i], err = template.New("partials").Funcs(funcs).ParseFS(templateFS, "templates/partials.html"); err != nil {
			return fmt.Errorf("pushui: parse templates: %w", err)
		}
	}
	s.pages = map[string]*template.Template{}
	for _, name := range []string{"index", "server", "app", "config", "error", "group", "groups", "rollout", "api"} {
		t, err := template.Must(base.Clone()).ParseFS(templateFS, "templates/"+name+".html")
		if err != nil {
			return fmt.Errorf("pushui: parse template %s: %w", name, err)
		}
		s.pages[name] = t
	}
	return nil
}

// render executes page into a buffer and, only when that succeeded, sends
// it with status code: a template error never leaves half a page.
func (s *webUI) render(w http.ResponseWriter, r *http.Request, code int, page string, data any) {
	buf := s.bufs.Get().(*bytes.Buffer)
	buf.Reset()
	defer func() {
		if buf.Cap() <= 64<<20 {
			s.bufs.Put(buf)
		}
	}()
	if err := s.pages[page].ExecuteTemplate(buf, "layout", data); err != nil {
		s.log.Error("render failed", "page", page, "path", r.URL.Path, "err", err)
		http.Error(w, "pushui: rendering the page failed; see the log", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}

// staticHash is a digest of the embedded static files; page links carry it
// so browsers may cache them for as long as the binary runs.
func staticHash() string {
	h := sha256.New()
	_ = fs.WalkDir(staticFS, "static", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := staticFS.ReadFile(path)
		h.Write([]byte(path))
		h.Write(b)
		return err
	})
	return hex.EncodeToString(h.Sum(nil))[:12]
}

func (s *webUI) staticHandler() http.Handler {
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		panic(err) // the directory is embedded above
	}
	files := http.FileServerFS(sub)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("v") == s.staticVersion {
			w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		} else {
			w.Header().Set("Cache-Control", "no-cache")
		}
		files.ServeHTTP(w, r)
	})
}
