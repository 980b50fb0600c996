// Package metadatatest runs a GCE metadata server for tests: the part of
// the protocol pulld uses, over real HTTP, so the real
// cloud.google.com/go/compute/metadata client talks to it through
// GCE_METADATA_HOST.
//
// It serves GET /computeMetadata/v1/{key} for the keys set with Set, and
// directory keys ending in "/" that list their children one per line, as
// GCE does. Every response carries an ETag that is a hash of its body.
// Requests without the header "Metadata-Flavor: Google" are refused with
// 403. With wait_for_change=true the request hangs until the value's ETag
// differs from last_etag (at once when it already does), the key is
// deleted (404), timeout_sec passes, or the client goes away: GCE's hanging
// GETs.
package metadatatest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// prefix is the path every metadata key is served under.
const prefix = "/computeMetadata/v1/"

// Server is a running metadata server. Its methods are safe for concurrent
// use.
type Server struct {
	// Host is host:port, the value for GCE_METADATA_HOST.
	Host string

	srv *httptest.Server

	mu      sync.Mutex
	values  map[string]string // key (no leading slash) → value
	changed chan struct{}     // closed and replaced on every change
	waiting int               // hanging GETs in progress
	done    chan struct{}     // closed by Close
}

// Start starts a server with no keys. It is closed when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{values: map[string]string{}, changed: make(chan struct{}), done: make(chan struct{})}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.Host = strings.TrimPrefix(s.srv.URL, "http://")
	t.Cleanup(s.Close)
	return s
}

// Setenv points the metadata client at the server for the rest of the test
// (t.Setenv, so the test cannot be parallel).
func (s *Server) Setenv(t testing.TB) {
	t.Helper()
	t.Setenv("GCE_METADATA_HOST", s.Host)
}

// Close releases every hanging GET and stops the server. It is idempotent.
func (s *Server) Close() {
	s.mu.Lock()
	select {
	case <-s.done:
		s.mu.Unlock()
		return
	default:
		close(s.done)
	}
	s.mu.Unlock()
	s.srv.CloseClientConnections()
	s.srv.Close()
}

// Set sets key (such as "instance/attributes/pushrev") to value and wakes
// the hanging GETs on it and on its directories.
func (s *Server) Set(key, value string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.values[strings.TrimPrefix(key, "/")] = value
	s.notify()
}

// Delete removes key.
func (s *Server) Delete(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.values, strings.TrimPrefix(key, "/"))
	s.notify()
}

// Waiting returns the number of hanging GETs in progress: a client that is
// waiting for a change cannot miss the next Set.
func (s *Server) Waiting() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.waiting
}

// notify wakes every hanging GET; callers hold s.mu.
func (s *Server) notify() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// lookup returns the value of key and whether it exists; callers hold s.mu.
// A key ending in "/" is a directory listing its direct children, sorted,
// one per line (subdirectories with a trailing "/"), and exists when it has
// any.
func (s *Server) lookup(key string) (string, bool) {
	if !strings.HasSuffix(key, "/") {
		v, ok := s.values[key]
		return v, ok
	}
	var names []string
	for k := range s.values {
		rest, ok := strings.CutPrefix(k, key)
		if !ok || rest == "" {
			continue
		}
		if i := strings.Index(rest, "/"); i >= 0 {
			rest = rest[:i+1]
		}
		if !slices.Contains(names, rest) {
			names = append(names, rest)
		}
	}
	if len(names) == 0 {
		return "", false
	}
	slices.Sort(names)
	return strings.Join(names, "\n") + "\n", true
}

func etag(v string) string {
	sum := sha256.Sum256([]byte(v))
	return hex.EncodeToString(sum[:8])
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Metadata-Flavor", "Google")
	if r.Header.Get("Metadata-Flavor") != "Google" {
		http.Error(w, "missing Metadata-Flavor: Google header", http.StatusForbidden)
		return
	}
	key, ok := strings.CutPrefix(r.URL.Path, prefix)
	if !ok || r.Method != http.MethodGet {
		http.NotFound(w, r)
		return
	}
	q := r.URL.Query()
	wait := q.Get("wait_for_change") == "true"
	last := q.Get("last_etag")
	var timeout <-chan time.Time
	if sec, err := strconv.Atoi(q.Get("timeout_sec")); err == nil && sec > 0 {
		timeout = time.After(time.Duration(sec) * time.Second)
	}

	s.mu.Lock()
	for {
		v, exists := s.lookup(key)
		if !exists {
			s.mu.Unlock()
			http.NotFound(w, r)
			return
		}
		if !wait || last == "" || etag(v) != last {
			s.mu.Unlock()
			s.reply(w, v)
			return
		}
		changed := s.changed
		s.waiting++
		s.mu.Unlock()
		var timedOut bool
		select {
		case <-changed:
		case <-timeout:
			timedOut = true
		case <-r.Context().Done():
		case <-s.done:
		}
		s.mu.Lock()
		s.waiting--
		if r.Context().Err() != nil || isClosed(s.done) {
			s.mu.Unlock()
			http.Error(w, "server closing", http.StatusServiceUnavailable)
			return
		}
		if timedOut {
			v, exists := s.lookup(key)
			s.mu.Unlock()
			if !exists {
				http.NotFound(w, r)
				return
			}
			s.reply(w, v)
			return
		}
	}
}

func (s *Server) reply(w http.ResponseWriter, v string) {
	w.Header().Set("ETag", etag(v))
	w.Header().Set("Content-Type", "application/text")
	fmt.Fprint(w, v)
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
