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
	b           bucket
	fleet       *fleet.Writer
	rollouts    *rollout.Driver
	rolloutTick time.Duration
	pc          atomic.Pointer[pushConfig]
	auth        *auth
	refusals    *refusals
	metrics     *prometheus.Registry
	nudger      Nudger
	log         *slog.Logger
	now         func() time.Time
	cache       *cache

	pages         map[string]*template.Template
	sections      []*template.Template // one per rendering goroutine (see renderSections)
	staticVersion string
	handler       http.Handler
	bufs          sync.Pool
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
	if n := countTrue(opts.AuthHeader != "", opts.Htpasswd != nil, opts.IAP != nil); n > 1 {
		return nil, errors.New("pushui: choose one authentication: an identity header, an htpasswd file or IAP")
	}
	if opts.IAP != nil && opts.IAPAudience == "" {
		return nil, errors.New("pushui: IAP needs its audience")
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
	s := &Server{
		b:      b,
		auth:   &auth{header: opts.AuthHeader, trusted: opts.TrustedProxies, htpasswd: opts.Htpasswd, iap: opts.IAP, audience: opts.IAPAudience, admins: map[string]bool{}},
		nudger: opts.Nudger,
		log:    opts.Logger,
		now:    now,
		bufs:   sync.Pool{New: func() any { return new(bytes.Buffer) }},
	}
	s.metrics = prometheus.NewRegistry()
	s.refusals = &refusals{log: opts.Logger, now: now, seen: map[string]*refusedPair{},
		counter: prometheus.NewCounter(prometheus.CounterOpts{Name: "pushui_sign_ins_refused_total", Help: "Sign-ins refused: an unknown user or a wrong password (HTTP Basic, -htpasswd)."})}
	s.metrics.MustRegister(s.refusals.counter)
	for _, a := range opts.Admins {
		if a = strings.TrimSpace(a); a != "" {
			s.auth.admins[a] = true
		}
	}
	// A group's nudge spreads its members' reads over a window sized to
	// the members pushui knows of (the cache exists by the first write).
	s.fleet = fleet.New(opts.Store, fleet.Options{Nudger: opts.Nudger, Logger: opts.Logger, Now: now,
		Members: func(g string) int { return len(s.cache.load().members(g)) },
		AbortRollout: func(ctx context.Context, group, env, id, user string) error {
			_, err := s.rollouts.Command(ctx, blobstore.RolloutRef{Group: group, Env: env, ID: id}, rollout.Abort, user)
			return err
		}})
	s.rollouts, s.rolloutTick = s.newDriver(opts), opts.rolloutTick()
	if err := s.bootstrapConfig(ctx, opts.Config); err != nil {
		return nil, err
	}
	s.cache = newCache(b, s.conf, opts.Logger, now)
	if err := s.parseTemplates(); err != nil {
		return nil, err
	}
	s.staticVersion = staticHash()
	s.handler = s.routes()
	if err := s.cache.refresh(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// Refresh lists the bucket again: servers, manifests, statuses and package
// names. Package metadata already fetched is kept (packages never change).
// The pages keep showing the previous state until it completes; on error
// they keep it.
func (s *Server) Refresh(ctx context.Context) error {
	s.reloadConfig(ctx)
	return s.cache.refresh(ctx)
}

// ServeHTTP serves the UI and the API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.handleIndex)
	mux.HandleFunc("POST /refresh", s.handleRefresh)
	mux.HandleFunc("GET /servers/{server}", s.handleServer)
	mux.HandleFunc("GET /servers/{server}/apps/{app}", s.handleApp)
	mux.HandleFunc("POST /servers/{server}/apps/{app}/deploy", s.handleDeploy)
	mux.HandleFunc("POST /servers/{server}/apps/{app}/remove", s.handleRemove)
	mux.HandleFunc("GET /servers/{server}/envs/{env}/output", s.handleOutput)
	mux.HandleFunc("POST /servers/{server}/envs/{env}/restart", s.handleRestart)
	mux.HandleFunc("POST /servers/{server}/envs/{env}/config", s.handleConfig)
	mux.HandleFunc("POST /promote", s.handlePromote)
	mux.HandleFunc("GET /groups", s.handleGroups)
	mux.HandleFunc("GET /groups/{group}", s.handleGroup)
	mux.HandleFunc("POST /groups/{group}/apps/{app}/deploy", s.handleGroupDeploy)
	mux.HandleFunc("POST /groups/{group}/apps/{app}/remove", s.handleGroupRemove)
	mux.HandleFunc("POST /groups/{group}/envs/{env}/restart", s.handleGroupRestart)
	mux.HandleFunc("POST /groups/{group}/envs/{env}/config", s.handleGroupConfig)
	mux.HandleFunc("POST /groups/{group}/envs/{env}/promote", s.handlePromoteEnv)
	mux.HandleFunc("POST /groups/{group}/rollouts", s.handleStartRollout)
	mux.HandleFunc("GET /rollouts/{group}/{env}/{id}", s.handleRollout)
	mux.HandleFunc("POST /rollouts/{group}/{env}/{id}/{cmd}", s.handleRolloutCommand)
	mux.Handle("GET /static/", http.StripPrefix("/static/", s.staticHandler()))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.metrics, promhttp.HandlerOpts{}))

	for _, rt := range s.apiRoutes() { // the API reference's table
		mux.HandleFunc(rt.Method+" "+rt.Path, rt.handler)
	}
	mux.HandleFunc("GET /api", s.handleAPIDoc)
	mux.HandleFunc("GET /config", s.handleConfigPage)
	mux.HandleFunc("POST /config", s.handleConfigSave)
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		s.apiError(w, http.StatusNotFound, "no such API endpoint: "+r.Method+" "+r.URL.Path)
	})

	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.log.Warn("cross-origin request refused", "method", r.Method, "path", r.URL.Path, "origin", r.Header.Get("Origin"), "sec_fetch_site", r.Header.Get("Sec-Fetch-Site"))
		s.fail(w, r, http.StatusForbidden, "cross-origin request refused: changes can only be made from pushui's own pages")
	}))
	return securityHeaders(cop.Handler(s.authenticate(mux)))
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

// authenticate identifies the user and refuses what they may not do:
// anyone unidentified gets 401, and a non-admin gets 403 for every
// state-changing request except a refresh of the cached view.
func (s *Server) authenticate(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" || r.URL.Path == "/metrics" {
			h.ServeHTTP(w, r)
			return
		}
		user, why := s.auth.identify(r)
		if user == "" {
			if s.auth.htpasswd != nil {
				w.Header().Set("WWW-Authenticate", `Basic realm="pushui", charset="UTF-8"`)
				if u, _, ok := r.BasicAuth(); ok {
					s.refusals.refused(u, r.RemoteAddr)
				}
			}
			if s.auth.htpasswd == nil { // a browser's first request to a Basic realm is not news
				s.log.Warn("request refused: no identity", "remote", r.RemoteAddr, "method", r.Method, "path", r.URL.Path, "why", why)
			}
			s.fail(w, r, http.StatusUnauthorized, why)
			return
		}
		safe := r.Method == http.MethodGet || r.Method == http.MethodHead || r.Method == http.MethodOptions
		if !safe && r.URL.Path != "/refresh" && !s.auth.isAdmin(user) {
			s.log.Warn("write refused", "user", user, "method", r.Method, "path", r.URL.Path)
			s.fail(w, r, http.StatusForbidden, user+" may look but not change anything (not in -admins)")
			return
		}
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), userKey, user)))
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
		s.apiError(w, code, msg)
		return
	}
	s.render(w, r, code, "error", &errorPage{page: s.page(r, http.StatusText(code)), Code: code, Message: msg})
}

func (s *Server) apiError(w http.ResponseWriter, code int, msg string) {
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
func (s *Server) parseTemplates() error {
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
func (s *Server) render(w http.ResponseWriter, r *http.Request, code int, page string, data any) {
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

func (s *Server) staticHandler() http.Handler {
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
