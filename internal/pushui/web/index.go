package web

import (
	"bytes"
	"errors"
	"html/template"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pushpull/pushpull/client"
	"github.com/pushpull/pushpull/internal/fleetview"
)

type indexPage struct {
	page
	Filter fleetview.Filter
	Groups []string
	// Summary is every group with its members counted by state: the
	// fleet at a glance, whatever its size.
	Summary []client.GroupSummary
	// Sections holds the rendered server sections of this page (see
	// renderSections).
	Sections template.HTML
	Shown    int // sections on this page
	Matching int // servers matching the filter
	Total    int
	Pager    pager
	AsOf     fleetview.Moment
}

// serversPerPage bounds the servers one page of the main page shows, so
// that no page grows with the fleet.
const serversPerPage = 100

// pager is one page of a long list: which items it shows and the links to
// the pages beside it, which keep the rest of the query.
type pager struct {
	Page, Pages int
	From, To    int // 1-based, inclusive; To < From when empty
	Prev, Next  string
}

// paginate returns the bounds [lo, hi) of page ?page=N (1-based) of n
// items, per at a time, and its pager.
func paginate(r *http.Request, n, per int) (lo, hi int, p pager) {
	p.Pages = max(1, (n+per-1)/per)
	p.Page, _ = strconv.Atoi(r.URL.Query().Get("page"))
	p.Page = min(max(p.Page, 1), p.Pages)
	lo, hi = (p.Page-1)*per, min(p.Page*per, n)
	p.From, p.To = lo+1, hi
	link := func(page int) string {
		q := r.URL.Query()
		q.Set("page", strconv.Itoa(page))
		return r.URL.Path + "?" + q.Encode()
	}
	if p.Page > 1 {
		p.Prev = link(p.Page - 1)
	}
	if p.Page < p.Pages {
		p.Next = link(p.Page + 1)
	}
	return lo, hi, p
}

// handleIndex renders the main page from the cache: one section per server
// passing the filter.
func (s *Handler) handleIndex(w http.ResponseWriter, r *http.Request) {
	st := s.View.Load()
	f := fleetview.FilterFrom(r.URL.Query())
	p := &indexPage{page: s.page(r, "Servers"), Filter: f, Total: len(st.Order), AsOf: fleetview.At(st.AsOf, s.Now())}
	p.Groups = st.GroupNames(s.Conf())
	names := make([]string, 0, len(st.Order))
	for _, name := range st.Order {
		if f.Server != "" && !strings.Contains(name, f.Server) {
			continue
		}
		if f.Group != "" && !st.InGroup(name, f.Group) {
			continue
		}
		names = append(names, name)
	}
	p.Summary = fleetview.Summaries(s.View.Load(), s.Conf(), p.Now, s.View.Labels())
	var err error
	if f.App != "" || f.State != "" {
		// Which servers carry a matching app, or are in a state, is
		// known only once their rows are built: filter first, then page.
		names = s.matchingRows(st, names, f, p.Now)
	}
	p.Matching = len(names)
	lo, hi, pg := paginate(r, len(names), serversPerPage)
	p.Pager = pg
	p.Sections, p.Shown, err = s.renderSections(st, names[lo:hi], f.App, p.Now)
	if err != nil {
		s.Log.Error("render failed", "page", "index", "err", err)
		http.Error(w, "pushui: rendering the page failed; see the log", http.StatusInternalServerError)
		return
	}
	s.render(w, r, http.StatusOK, "index", p)
}

// matchingRows returns the servers of names that f's app and state keep:
// with a row whose app or env contains f.App, in f.State.
func (s *Handler) matchingRows(st *fleetview.State, names []string, f fleetview.Filter, now time.Time) []string {
	lb := s.View.Labels()
	out := names[:0:0]
	for _, name := range names {
		v := fleetview.BuildServer(st.Servers[name], s.Conf(), st.Groups, st.Apps, now, false, lb)
		if f.App != "" {
			v.KeepRows(fleetview.Matching(f.App))
			if len(v.Rows) == 0 {
				continue
			}
		}
		if f.InState(v) {
			out = append(out, name)
		}
	}
	return out
}

// sectionChunk is how many servers one rendering goroutine takes at a time.
const sectionChunk = 32

// renderSections builds and renders the sections of the named servers,
// keeping those with a row matching app (all when app is ""). It works in
// chunks on every CPU, since the main page of a large fleet is thousands of
// rows, and returns the sections in order with how many were kept. The
// result is html/template output, escaped like the rest of the page.
func (s *Handler) renderSections(st *fleetview.State, names []string, app string, now time.Time) (template.HTML, int, error) {
	type chunk struct {
		buf   *bytes.Buffer
		shown int
		err   error
	}
	chunks := make([]chunk, (len(names)+sectionChunk-1)/sectionChunk)
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := range min(runtime.GOMAXPROCS(0), len(chunks), len(s.sections)) {
		tmpl := s.sections[w]
		wg.Go(func() {
			lb := s.View.Labels()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(chunks) {
					return
				}
				c := &chunks[i]
				c.buf = s.bufs.Get().(*bytes.Buffer)
				c.buf.Reset()
				for _, name := range names[i*sectionChunk : min((i+1)*sectionChunk, len(names))] {
					v := fleetview.BuildServer(st.Servers[name], s.Conf(), st.Groups, st.Apps, now, false, lb)
					if app != "" {
						if v.KeepRows(fleetview.Matching(app)); len(v.Rows) == 0 {
							continue
						}
					}
					if c.err = tmpl.ExecuteTemplate(c.buf, "server", v); c.err != nil {
						return
					}
					c.shown++
				}
			}
		})
	}
	wg.Wait()
	size, shown := 0, 0
	for _, c := range chunks {
		if c.err != nil {
			return "", 0, c.err
		}
		if c.buf == nil { // left by a goroutine that failed on an earlier chunk
			return "", 0, errors.New("pushui: a section was not rendered")
		}
		size += c.buf.Len()
		shown += c.shown
	}
	var out strings.Builder
	out.Grow(size)
	for _, c := range chunks {
		out.Write(c.buf.Bytes())
		s.bufs.Put(c.buf)
	}
	return template.HTML(out.String()), shown, nil
}

// handleRefresh lists the bucket again and returns to the page it came
// from.
func (s *Handler) handleRefresh(w http.ResponseWriter, r *http.Request) {
	if err := s.View.Refresh(r.Context()); err != nil {
		s.Log.Error("refresh failed", "err", err)
		s.Fail(w, r, http.StatusBadGateway, err.Error())
		return
	}
	http.Redirect(w, r, localPath(r.FormValue("next")), http.StatusSeeOther)
}

// localPath returns next when it is a path on this site, "/" otherwise, so
// a crafted form cannot redirect elsewhere.
func localPath(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") {
		return "/"
	}
	return next
}
