package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pushpull/pushpull/internal/fleetview"
	"github.com/pushpull/pushpull/internal/pushui/ops"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// New returns the pages over svc; failErr answers the errors of
// their writes.
func New(svc *ops.Service, failErr func(http.ResponseWriter, *http.Request, error)) (*Handler, error) {
	s := &Handler{Service: svc, failErrHook: failErr, bufs: sync.Pool{New: func() any { return new(bytes.Buffer) }}, staticVersion: staticHash()}
	if err := s.parseTemplates(); err != nil {
		return nil, err
	}
	return s, nil
}

// Handler serves the pages.
type Handler struct {
	*ops.Service
	failErrHook   func(http.ResponseWriter, *http.Request, error)
	pages         map[string]*template.Template
	sections      []*template.Template // one per rendering goroutine (see renderSections)
	staticVersion string
	bufs          sync.Pool
}

// parseTemplates parses every page once: the layout and partials shared,
// one clone per page so each can define its own "content".
func (s *Handler) parseTemplates() error {
	funcs := template.FuncMap{
		"ago":    fleetview.Ago,
		"utc":    fleetview.UTC,
		"iso":    func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
		"size":   fleetview.HumanSize,
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
func (s *Handler) render(w http.ResponseWriter, r *http.Request, code int, page string, data any) {
	buf := s.bufs.Get().(*bytes.Buffer)
	buf.Reset()
	defer func() {
		if buf.Cap() <= 64<<20 {
			s.bufs.Put(buf)
		}
	}()
	if err := s.pages[page].ExecuteTemplate(buf, "layout", data); err != nil {
		s.Log.Error("render failed", "page", page, "path", r.URL.Path, "err", err)
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

func (s *Handler) staticHandler() http.Handler {
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
