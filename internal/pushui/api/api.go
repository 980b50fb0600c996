package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/pushpull/pushpull/blobstore"
	"github.com/pushpull/pushpull/client"
	"github.com/pushpull/pushpull/internal/fleet"
	"github.com/pushpull/pushpull/internal/fleetview"
	"github.com/pushpull/pushpull/internal/pushui/auth"
	"github.com/pushpull/pushpull/internal/pushui/ops"
	"github.com/pushpull/pushpull/manifest"
)

// maxManifestBody bounds a PUT manifest's size: the bucket's bound on
// every document.
const maxManifestBody = blobstore.MaxDocumentSize

// apiServers answers GET /api/servers[?server=&app=&group=]: every server
// with its desired and actual state, from the cache (as_of says when it
// was last listed in full). Script output is left out.
func (s *Handler) apiServers(w http.ResponseWriter, r *http.Request) {
	st := s.View.Load()
	now := s.Now()
	f := fleetview.FilterFrom(r.URL.Query())
	lb := s.View.Labels()
	out := client.Servers{AsOf: st.AsOf, Servers: []client.ServerInfo{}}
	for _, name := range st.Order {
		if f.Server != "" && !strings.Contains(name, f.Server) {
			continue
		}
		if f.Group != "" && !st.InGroup(name, f.Group) {
			continue
		}
		ss := st.Servers[name]
		v := fleetview.BuildServer(ss, s.Conf(), st.Groups, st.Apps, now, false, lb)
		if f.App != "" {
			if v.KeepRows(fleetview.Matching(f.App)); len(v.Rows) == 0 {
				continue
			}
		}
		a := client.ServerInfo{
			Name: name, InConfig: v.InConfig, Groups: nonNil(v.Groups), Allowed: nonNil(v.Allowed),
			Version: strings.Trim(string(ss.Version), `"`), ManifestError: ss.ManifestErr,
			Status: withoutOutput(ss.Status), StatusError: ss.StatusErr, Stale: v.Stale, Pending: v.Pending, Envs: []client.EnvInfo{},
		}
		if ss.Manifest != nil {
			a.Manifest = ss.Manifest.Marshal()
		}
		for _, row := range v.Rows {
			if !row.InManifest && !row.Reported {
				continue
			}
			e := client.EnvInfo{Env: row.Env, App: row.App, State: string(row.State), Step: row.Step, Error: row.Error,
				Drift: row.Drift, Failed: row.Failed, InProgress: row.InProgress, Action: row.Action, NewerAvailable: row.Old, Allowed: row.Allowed}
			if row.Desired != nil {
				e.Desired = row.Desired.Name
			}
			if row.Serving != nil {
				e.Serving = row.Serving.Name
			}
			a.Envs = append(a.Envs, e)
		}
		out.Servers = append(out.Servers, a)
	}
	writeJSON(w, http.StatusOK, out)
}

// withoutOutput returns st without the envs' script output, which can be
// 10 KB per failing env: GET /api/servers/{server}/status has it.
func withoutOutput(st *manifest.Status) *manifest.Status {
	if st == nil {
		return nil
	}
	c := *st
	c.Envs = slices.Clone(st.Envs)
	for i := range c.Envs {
		c.Envs[i].Output = ""
	}
	return &c
}

// apiStatus answers GET /api/servers/{server}/status: the server's status
// as pulld last wrote it, read fresh, script output included; 404 before
// its first report.
func (s *Handler) apiStatus(w http.ResponseWriter, r *http.Request) {
	server := r.PathValue("server")
	if err := s.KnownServer(server); err != nil {
		s.failErrHook(w, r, err)
		return
	}
	ss := s.View.RefreshServer(r.Context(), server)
	switch {
	case ss.StatusErr != "":
		WriteError(w, http.StatusBadGateway, ss.StatusErr)
	case ss.Status == nil:
		WriteError(w, http.StatusNotFound, server+" has not reported a status yet")
	default:
		writeJSON(w, http.StatusOK, ss.Status)
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// etag quotes a Version as an HTTP entity tag. S3 versions are ETags that
// already carry their quotes.
func etag(v blobstore.Version) string {
	return `"` + strings.Trim(string(v), `"`) + `"`
}

// apiGetManifest answers GET /api/servers/{server}: the manifest in
// canonical form, read fresh, with its version as ETag. A configured
// server without a manifest gets an empty one and no ETag (create it with
// PUT and If-None-Match: *). A manifest that does not parse is 409 with
// its ETag, so a PUT can replace it.
//
// GET /api/groups/{group} is the same for a group's manifest.
func (s *Handler) apiGetManifest(w http.ResponseWriter, r *http.Request) {
	t, err := s.pathTarget(r)
	if err != nil {
		s.failErrHook(w, r, err)
		return
	}
	m, v, err := s.Bucket.ReadManifest(r.Context(), t)
	if err != nil {
		if errors.Is(err, manifest.ErrInvalidManifest) {
			w.Header().Set("ETag", etag(v))
			WriteError(w, http.StatusConflict, err.Error())
			return
		}
		s.failErrHook(w, r, err)
		return
	}
	if v != "" {
		w.Header().Set("ETag", etag(v))
	}
	w.Header().Set("Cache-Control", "no-store")
	writeRaw(w, http.StatusOK, auth.ForViewer(r.Context(), m).Marshal())
}

func writeRaw(w http.ResponseWriter, code int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(code)
	_, _ = w.Write(body)
}

// apiPutManifest answers PUT /api/servers/{server}: replace the whole
// manifest, conditionally. It needs If-Match with the ETag a GET returned
// (or *), or If-None-Match: * to create a manifest that does not exist:
// 428 without either, 412 when the manifest changed (with the current one
// in the body), 400 naming the problem when the document does not parse,
// lists an app the config does not allow or a package that does not
// exist. Nothing is written in any of those cases. The revision written is
// one more than the higher of the body's and the current one, so it only
// ever grows. A body equal to the current manifest writes nothing.
//
// PUT /api/groups/{group} is the same for a group's manifest.
func (s *Handler) apiPutManifest(w http.ResponseWriter, r *http.Request) {
	t, err := s.pathTarget(r)
	if err != nil {
		s.failErrHook(w, r, err)
		return
	}
	ifMatch, ifNone := strings.TrimSpace(r.Header.Get("If-Match")), strings.TrimSpace(r.Header.Get("If-None-Match"))
	if ifMatch == "" && ifNone != "*" {
		WriteError(w, http.StatusPreconditionRequired, "PUT needs If-Match with the ETag from GET "+r.URL.Path+" (or If-None-Match: * to create a manifest)")
		return
	}
	body, err := readBody(w, r, maxManifestBody)
	if err != nil {
		s.apiBodyError(w, "manifest", err)
		return
	}
	m, err := manifest.Parse(body)
	if err != nil {
		WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	ctx := r.Context()
	_, v, err := s.Bucket.ReadManifest(ctx, t)
	if err != nil && !errors.Is(err, manifest.ErrInvalidManifest) {
		s.failErrHook(w, r, err)
		return
	}
	if !preconditionHolds(ifMatch, ifNone, v) {
		s.apiConflict(w, r, t)
		return
	}
	c, err := s.Edit(ctx, fleet.Edit{
		Target: t, User: auth.User(ctx), Action: "put manifest", IfVersion: v, OverInvalid: true,
		Apply: func(next *manifest.Manifest) error {
			rev := max(m.Revision, next.Revision)
			*next = *m.Clone()
			next.Revision = rev
			return nil
		},
	})
	if errors.Is(err, blobstore.ErrConflict) {
		s.apiConflict(w, r, t)
		return
	}
	if err != nil {
		s.failErrHook(w, r, err)
		return
	}
	w.Header().Set("ETag", etag(c.Version))
	if c.NudgeErr != nil {
		w.Header().Set("X-Pushui-Nudge-Error", oneLine(c.NudgeErr.Error()))
	}
	writeRaw(w, http.StatusOK, c.After.Marshal())
}

// readBody reads a request body of at most limit bytes.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	return io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
}

// apiBodyError answers a body that could not be read: 413 when it was
// larger than allowed, 400 otherwise.
func (s *Handler) apiBodyError(w http.ResponseWriter, what string, err error) {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		WriteError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("%s: larger than %d bytes", what, mbe.Limit))
		return
	}
	WriteError(w, http.StatusBadRequest, "read "+what+": "+err.Error())
}

func oneLine(s string) string { return strings.NewReplacer("\r", " ", "\n", " ").Replace(s) }

// preconditionHolds evaluates If-Match / If-None-Match against the current
// version ("" when the manifest does not exist).
func preconditionHolds(ifMatch, ifNone string, v blobstore.Version) bool {
	if ifNone == "*" && ifMatch == "" {
		return v == ""
	}
	if v == "" {
		return false
	}
	cur := strings.Trim(string(v), `"`)
	for _, t := range strings.Split(ifMatch, ",") {
		t = strings.TrimSpace(t)
		if t == "*" {
			return true
		}
		if strings.HasPrefix(t, "W/") {
			continue // strong comparison: weak tags never match
		}
		if strings.Trim(t, `"`) == cur && len(t) >= 2 && t[0] == '"' && t[len(t)-1] == '"' {
			return true
		}
	}
	return false
}

// apiConflict answers 412 with t's current manifest and its ETag.
func (s *Handler) apiConflict(w http.ResponseWriter, r *http.Request, t manifest.Target) {
	m, v, err := s.Bucket.ReadManifest(r.Context(), t)
	s.Reread(r.Context(), t)
	out := map[string]any{"error": "manifest of " + t.String() + " changed since it was read: nothing written; GET it again"}
	if err == nil {
		out["current"] = json.RawMessage(m.Marshal())
	}
	if v != "" {
		w.Header().Set("ETag", etag(v))
	}
	writeJSON(w, http.StatusPreconditionFailed, out)
}

// apiHistory answers GET /api/servers/{server}/history[?limit=N]: the
// server's audit records, newest first; GET /api/groups/{group}/history,
// the group's.
func (s *Handler) apiHistory(w http.ResponseWriter, r *http.Request) {
	t, err := s.pathTarget(r)
	if err != nil {
		s.failErrHook(w, r, err)
		return
	}
	limit := fleetview.HistoryLimit
	if q := r.URL.Query().Get("limit"); q != "" {
		n, err := strconv.Atoi(q)
		if err != nil || n < 1 || n > 1000 {
			WriteError(w, http.StatusBadRequest, "limit must be a number from 1 to 1000")
			return
		}
		limit = n
	}
	recs, err := s.Bucket.ListAudit(r.Context(), t, limit)
	if err != nil {
		s.failErrHook(w, r, err)
		return
	}
	out := client.History{Records: []client.Record{}}
	if t.IsGroup() {
		out.Group = t.Name
	} else {
		out.Server = t.Name
	}
	ctx := r.Context()
	for _, rec := range recs {
		rec.Before, rec.After = auth.ForViewer(ctx, rec.Before), auth.ForViewer(ctx, rec.After)
		a := client.Record{Time: rec.Time, User: rec.User, Action: rec.Action, Changes: nonNil(fleetview.DescribeChange(rec.Before, rec.After)), Before: json.RawMessage("null"), After: json.RawMessage("null")}
		if rec.Before != nil {
			a.Before = rec.Before.Marshal()
		}
		if rec.After != nil {
			a.After = rec.After.Marshal()
		}
		out.Records = append(out.Records, a)
	}
	writeJSON(w, http.StatusOK, out)
}

// apiPackages answers GET /api/apps/{app}/packages: the app's packages,
// newest first, with their metadata (listed afresh; metadata from memory
// when already known).
func (s *Handler) apiPackages(w http.ResponseWriter, r *http.Request) {
	app := r.PathValue("app")
	if err := manifest.CheckName("app", app); err != nil {
		WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	pkgs, err := s.View.Packages(r.Context(), app)
	if err != nil {
		s.failErrHook(w, r, err)
		return
	}
	out := client.Packages{App: app, Packages: make([]client.PackageInfo, 0, len(pkgs))}
	for _, p := range pkgs {
		a := client.PackageInfo{Name: p.Name.String(), Built: p.Name.Built, Commit: p.Name.Commit, Dirty: p.Name.Dirty, Format: string(p.Name.Format), Size: p.Size}
		if p.Err != nil {
			a.Error = p.Err.Error()
		} else {
			m := p.Meta
			if m.Commit != "" {
				a.Commit = m.Commit
			}
			if !m.Built.IsZero() {
				a.Built = m.Built
			}
			a.Branch, a.Repo, a.User, a.Host, a.Note, a.SHA256 = m.Branch, m.Repo, m.User, m.Host, m.Note, m.SHA256
			a.Dirty = a.Dirty || m.Dirty
		}
		out.Packages = append(out.Packages, a)
	}
	writeJSON(w, http.StatusOK, out)
}

// apiDeploy answers POST /api/deploy: set one app's version on the given
// servers, or in a group's manifest, which is one write whatever the
// group's size. Each manifest is updated with a read-modify-write retried
// on conflict, touching only that app's entries. Bad input (unknown
// server, app not allowed on a listed server or on the group, missing
// package) is 400 with nothing written; 502 when a write failed (see each
// result).
func (s *Handler) apiDeploy(w http.ResponseWriter, r *http.Request) {
	var req client.DeployRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		WriteError(w, http.StatusBadRequest, "deploy request: "+err.Error())
		return
	}
	p, err := manifest.ParsePackageName(req.Package)
	if err != nil {
		WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	if req.Group != "" && len(req.Servers) > 0 {
		WriteError(w, http.StatusBadRequest, "give servers or group, not both")
		return
	}
	action := "set " + p.App + " to " + p.String()
	ctx := r.Context()
	var changes []*ops.Change
	if req.Group != "" {
		var c *ops.Change
		c, err = s.DeployGroup(ctx, auth.User(ctx), req.Group, p, req.AbortRollout)
		changes = []*ops.Change{c}
	} else {
		changes, err = s.DeployMany(ctx, auth.User(ctx), req.Servers, p, action, false, req.AbortRollout)
	}
	if err != nil {
		if errors.Is(err, ops.ErrUnknown) {
			WriteError(w, http.StatusBadRequest, err.Error())
			return
		}
		s.failErrHook(w, r, err)
		return
	}
	out := client.DeployResponse{Package: p.String()}
	code := http.StatusOK
	for _, c := range changes {
		d := client.DeployResult{Changed: c.Changed, Skipped: c.Skipped, Version: strings.Trim(string(c.Version), `"`)}
		if c.Target.IsGroup() {
			d.Group = c.Target.Name
		} else {
			d.Server = c.Target.Name
		}
		if c.After != nil {
			d.Revision = c.After.Revision
		}
		if c.Err != nil {
			d.Error = c.Err.Error()
			code = http.StatusBadGateway
		}
		if c.NudgeErr != nil {
			d.NudgeError = c.NudgeErr.Error()
		}
		if c.AuditErr != nil {
			d.AuditError = c.AuditErr.Error()
		}
		out.Results = append(out.Results, d)
	}
	writeJSON(w, code, out)
}
