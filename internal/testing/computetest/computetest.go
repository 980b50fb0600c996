// Package computetest runs a fake of the GCE Compute Engine API for tests:
// the part of it pushpull uses to nudge hosts, over real HTTP, so the real
// google.golang.org/api/compute/v1 client talks to it when given
// option.WithEndpoint(s.Endpoint) and option.WithoutAuthentication.
//
// It serves, under Endpoint,
//
//	GET  projects/{project}/zones/{zone}/instances/{name}
//	POST projects/{project}/zones/{zone}/instances/{name}/setMetadata
//	GET  projects/{project}
//	POST projects/{project}/setCommonInstanceMetadata
//
// for the instances added with Add and the projects added with
// AddProject (whose common instance metadata every instance sees). GET returns the instance with its
// metadata items and fingerprint. setMetadata replaces all the items with
// those of the request when the request's fingerprint is the current one,
// and answers a finished Operation; otherwise it answers 412
// conditionNotMet and changes nothing, as GCE does. Unknown instances are
// 404 notFound, malformed requests 400; errors are Google-style JSON
// ({"error": {"code", "message", "errors": [{"reason", …}]}}), which the
// client turns into a *googleapi.Error. Authentication is not checked.
//
// An instance's items can be mirrored into a metadatatest.Server as
// instance/attributes/{key}, so that a watcher of the metadata server (such
// as pulld's gce nudge source) sees what setMetadata does.
package computetest

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pushpull/pushpull/internal/testing/metadatatest"
)

// basePath is the path the API is served under, as on compute.googleapis.com.
const basePath = "/compute/v1/"

// Instance names one instance: its project, zone and name.
type Instance struct {
	Project, Zone, Name string
}

// String returns the instance's resource path, projects/P/zones/Z/instances/N.
func (in Instance) String() string {
	return "projects/" + in.Project + "/zones/" + in.Zone + "/instances/" + in.Name
}

// Server is a running fake Compute API. Its methods are safe for
// concurrent use.
type Server struct {
	// URL is the server's base URL, http://host:port.
	URL string
	// Endpoint is the API's base URL for option.WithEndpoint: URL followed by
	// /compute/v1/.
	Endpoint string

	srv *httptest.Server

	mu        sync.Mutex
	instances map[Instance]*instance
	projects  map[string]*instance // common instance metadata, by project
	beforeSet func(Instance)
	ops       int // operations created, for unique operation names
}

// instance is one instance's state; guarded by Server.mu.
type instance struct {
	id      uint64
	keys    []string // item keys in the order they were given
	items   map[string]string
	gen     int    // bumped on every change of the items
	dir     string // where the items appear on a metadata server: instance/attributes/ or project/attributes/
	mirrors []*metadatatest.Server
	shown   map[string]string // items last mirrored
}

// Start starts a server with no instances. It is closed when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{instances: map[Instance]*instance{}, projects: map[string]*instance{}}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL
	s.Endpoint = s.srv.URL + basePath
	t.Cleanup(s.Close)
	return s
}

// Close stops the server; requests fail from then on. It is idempotent.
func (s *Server) Close() { s.srv.Close() }

// Add creates the instance in with the metadata items given (nil for
// none), or replaces the items of an instance that exists. Items are kept
// in key order.
func (s *Server) Add(in Instance, items map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	inst, ok := s.instances[in]
	if !ok {
		inst = &instance{id: uint64(len(s.instances)) + 1000, dir: "instance/attributes/"}
		s.instances[in] = inst
	}
	m := make(map[string]string, len(items))
	maps.Copy(m, items)
	inst.replace(slices.Sorted(maps.Keys(m)), m)
}

// AddProject creates project with the common instance metadata items
// given (nil for none), or replaces them.
func (s *Server) AddProject(project string, items map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.projects[project]
	if !ok {
		p = &instance{id: uint64(len(s.projects)) + 1, dir: "project/attributes/"}
		s.projects[project] = p
	}
	m := maps.Clone(items)
	if m == nil {
		m = map[string]string{}
	}
	p.replace(slices.Sorted(maps.Keys(m)), m)
}

// ProjectItems returns a copy of project's common instance metadata items
// and whether project exists.
func (s *Server) ProjectItems(project string) (map[string]string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.projects[project]
	if !ok {
		return nil, false
	}
	return maps.Clone(p.items), true
}

// MirrorProject copies project's common metadata items to each md as
// project/attributes/{key}, now and after every change, as every
// instance's metadata server shows them. It panics when project does not
// exist.
func (s *Server) MirrorProject(project string, md ...*metadatatest.Server) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.projects[project]
	if !ok {
		panic("computetest: MirrorProject of unknown project " + project)
	}
	p.mirrors, p.shown = md, nil
	p.sync()
}

// Items returns a copy of the metadata items of in and whether in exists.
func (s *Server) Items(in Instance) (map[string]string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	inst, ok := s.instances[in]
	if !ok {
		return nil, false
	}
	return maps.Clone(inst.items), true
}

// SetItem sets one metadata item of in, as someone else editing the
// instance's metadata would: the fingerprint changes, so a setMetadata
// based on an earlier get fails with 412. It panics when in does not exist.
func (s *Server) SetItem(in Instance, key, value string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	inst, ok := s.instances[in]
	if !ok {
		panic("computetest: SetItem on unknown instance " + in.String())
	}
	keys := inst.keys
	if _, ok := inst.items[key]; !ok {
		keys = append(keys, key)
	}
	items := maps.Clone(inst.items)
	items[key] = value
	inst.replace(keys, items)
}

// BeforeSetMetadata makes f run at the start of every setMetadata request
// that names an existing instance, before the fingerprint is checked; nil
// removes it. f may call SetItem to race the request: the client's
// fingerprint is then stale and the request fails with 412. f runs on the
// request's goroutine and must not call BeforeSetMetadata.
func (s *Server) BeforeSetMetadata(f func(Instance)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.beforeSet = f
}

// Mirror copies the metadata items of in to md as
// instance/attributes/{key}, now and after every change: keys added or
// changed are Set, keys removed are Deleted. It panics when in does not
// exist. One instance mirrors into one metadata server at most; the last
// Mirror wins.
func (s *Server) Mirror(in Instance, md *metadatatest.Server) {
	s.mu.Lock()
	defer s.mu.Unlock()
	inst, ok := s.instances[in]
	if !ok {
		panic("computetest: Mirror of unknown instance " + in.String())
	}
	inst.mirrors, inst.shown = []*metadatatest.Server{md}, nil
	inst.sync()
}

// replace sets the items (keys in order) and bumps the fingerprint;
// callers hold Server.mu.
func (inst *instance) replace(keys []string, items map[string]string) {
	inst.keys, inst.items = keys, items
	inst.gen++
	inst.sync()
}

// sync brings the mirrors up to date; callers hold Server.mu.
func (inst *instance) sync() {
	for _, md := range inst.mirrors {
		for k := range inst.shown {
			if _, ok := inst.items[k]; !ok {
				md.Delete(inst.dir + k)
			}
		}
		for _, k := range inst.keys {
			if old, ok := inst.shown[k]; !ok || old != inst.items[k] {
				md.Set(inst.dir+k, inst.items[k])
			}
		}
	}
	inst.shown = maps.Clone(inst.items)
}

// fingerprint is the metadata fingerprint: a hash of the generation and the
// items, base64 as GCE's are. It changes on every change.
func (inst *instance) fingerprint() string {
	h := sha256.New()
	fmt.Fprintf(h, "%d\n", inst.gen)
	for _, k := range inst.keys {
		fmt.Fprintf(h, "%q=%q\n", k, inst.items[k])
	}
	return base64.StdEncoding.EncodeToString(h.Sum(nil)[:8])
}

// metadataJSON is the Compute API's Metadata resource.
type metadataJSON struct {
	Kind        string     `json:"kind,omitempty"`
	Fingerprint string     `json:"fingerprint,omitempty"`
	Items       []itemJSON `json:"items,omitempty"`
}

type itemJSON struct {
	Key   string  `json:"key"`
	Value *string `json:"value,omitempty"`
}

// metadata returns inst's metadata resource; callers hold Server.mu.
func (inst *instance) metadata() metadataJSON {
	md := metadataJSON{Kind: "compute#metadata", Fingerprint: inst.fingerprint()}
	for _, k := range inst.keys {
		v := inst.items[k]
		md.Items = append(md.Items, itemJSON{Key: k, Value: &v})
	}
	return md
}

// pathRE and projectRE match the routes under basePath.
var (
	pathRE    = regexp.MustCompile(`^projects/([^/]+)/zones/([^/]+)/instances/([^/]+)(/setMetadata)?$`)
	projectRE = regexp.MustCompile(`^projects/([^/]+)(/setCommonInstanceMetadata)?$`)
)

// keyRE is what GCE accepts as a metadata key.
var keyRE = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,127}$`)

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.Path, basePath)
	if p := projectRE.FindStringSubmatch(rest); ok && p != nil {
		s.serveProject(w, r, p[1], p[2] != "")
		return
	}
	m := pathRE.FindStringSubmatch(rest)
	if !ok || m == nil {
		writeError(w, http.StatusNotFound, "notFound", "no such route: "+r.Method+" "+r.URL.Path)
		return
	}
	in := Instance{Project: m[1], Zone: m[2], Name: m[3]}
	switch set := m[4] != ""; {
	case !set && r.Method == http.MethodGet:
		s.get(w, in)
	case set && r.Method == http.MethodPost:
		s.setMetadata(w, r, in)
	default:
		writeError(w, http.StatusMethodNotAllowed, "methodNotAllowed", r.Method+" not allowed on "+r.URL.Path)
	}
}

// serveProject answers GET projects/{project} (its common instance
// metadata) and POST …/setCommonInstanceMetadata, conditional on the
// fingerprint as for instances.
func (s *Server) serveProject(w http.ResponseWriter, r *http.Request, project string, set bool) {
	switch {
	case !set && r.Method == http.MethodGet:
		s.mu.Lock()
		p, ok := s.projects[project]
		var body map[string]any
		if ok {
			body = map[string]any{"kind": "compute#project", "name": project, "id": strconv.FormatUint(p.id, 10), "commonInstanceMetadata": p.metadata()}
		}
		s.mu.Unlock()
		if !ok {
			writeError(w, http.StatusNotFound, "notFound", fmt.Sprintf("The resource 'projects/%s' was not found", project))
			return
		}
		writeJSON(w, http.StatusOK, body)
	case set && r.Method == http.MethodPost:
		keys, items, fingerprint, ok := readItems(w, r)
		if !ok {
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		p, ok := s.projects[project]
		if !ok {
			writeError(w, http.StatusNotFound, "notFound", fmt.Sprintf("The resource 'projects/%s' was not found", project))
			return
		}
		if fingerprint != p.fingerprint() {
			writeError(w, http.StatusPreconditionFailed, "conditionNotMet", "Supplied fingerprint does not match current metadata fingerprint.")
			return
		}
		p.replace(keys, items)
		s.ops++
		writeJSON(w, http.StatusOK, map[string]any{"kind": "compute#operation", "name": fmt.Sprintf("operation-%d", s.ops),
			"operationType": "compute.projects.setCommonInstanceMetadata", "status": "DONE", "progress": 100})
	default:
		writeError(w, http.StatusMethodNotAllowed, "methodNotAllowed", r.Method+" not allowed on "+r.URL.Path)
	}
}

func notFound(w http.ResponseWriter, in Instance) {
	writeError(w, http.StatusNotFound, "notFound", fmt.Sprintf("The resource '%s' was not found", in))
}

func (s *Server) get(w http.ResponseWriter, in Instance) {
	s.mu.Lock()
	inst, ok := s.instances[in]
	if !ok {
		s.mu.Unlock()
		notFound(w, in)
		return
	}
	body := map[string]any{
		"kind":     "compute#instance",
		"id":       strconv.FormatUint(inst.id, 10),
		"name":     in.Name,
		"zone":     s.Endpoint + "projects/" + in.Project + "/zones/" + in.Zone,
		"status":   "RUNNING",
		"selfLink": s.Endpoint + in.String(),
		"metadata": inst.metadata(),
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, body)
}

// readItems decodes a Metadata request body, answering 400 for a
// malformed one; ok is false then.
func readItems(w http.ResponseWriter, r *http.Request) (keys []string, items map[string]string, fingerprint string, ok bool) {
	var req metadataJSON
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "invalid", "Invalid JSON payload received: "+err.Error())
		return nil, nil, "", false
	}
	items = make(map[string]string, len(req.Items))
	for _, it := range req.Items {
		if !keyRE.MatchString(it.Key) {
			writeError(w, http.StatusBadRequest, "invalid", fmt.Sprintf("Invalid value for field 'resource.items[].key': '%s'", it.Key))
			return nil, nil, "", false
		}
		if _, dup := items[it.Key]; dup {
			writeError(w, http.StatusBadRequest, "invalid", fmt.Sprintf("Duplicate metadata key '%s'", it.Key))
			return nil, nil, "", false
		}
		keys = append(keys, it.Key)
		if it.Value != nil {
			items[it.Key] = *it.Value
		} else {
			items[it.Key] = ""
		}
	}
	return keys, items, req.Fingerprint, true
}

func (s *Server) setMetadata(w http.ResponseWriter, r *http.Request, in Instance) {
	keys, items, fingerprint, ok := readItems(w, r)
	if !ok {
		return
	}

	s.mu.Lock()
	_, ok = s.instances[in]
	before := s.beforeSet
	s.mu.Unlock()
	if !ok {
		notFound(w, in)
		return
	}
	if before != nil {
		before(in)
	}

	s.mu.Lock()
	inst, ok := s.instances[in]
	if !ok {
		s.mu.Unlock()
		notFound(w, in)
		return
	}
	if fingerprint != inst.fingerprint() {
		s.mu.Unlock()
		writeError(w, http.StatusPreconditionFailed, "conditionNotMet", "Supplied fingerprint does not match current metadata fingerprint.")
		return
	}
	inst.replace(keys, items)
	s.ops++
	now := time.Now().UTC().Format(time.RFC3339Nano)
	op := map[string]any{
		"kind":          "compute#operation",
		"id":            strconv.Itoa(s.ops),
		"name":          fmt.Sprintf("operation-%d", s.ops),
		"operationType": "setMetadata",
		"targetLink":    s.Endpoint + in.String(),
		"targetId":      strconv.FormatUint(inst.id, 10),
		"status":        "DONE",
		"progress":      100,
		"insertTime":    now,
		"startTime":     now,
		"endTime":       now,
		"zone":          s.Endpoint + "projects/" + in.Project + "/zones/" + in.Zone,
		"selfLink":      s.Endpoint + "projects/" + in.Project + "/zones/" + in.Zone + fmt.Sprintf("/operations/operation-%d", s.ops),
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, op)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// writeError answers a Google API error, as the client's
// googleapi.CheckResponse parses it.
func writeError(w http.ResponseWriter, code int, reason, message string) {
	writeJSON(w, code, map[string]any{"error": map[string]any{
		"code":    code,
		"message": message,
		"errors":  []map[string]string{{"domain": "global", "reason": reason, "message": message}},
	}})
}
