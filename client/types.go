package client

import (
	"encoding/json"
	"time"

	"github.com/pushpull/pushpull/manifest"
)

// EnvInfo is one env of a server in GET /api/servers: desired against
// actual.
type EnvInfo struct {
	Env            string          `json:"env"`
	App            string          `json:"app"`
	Desired        string          `json:"desired,omitempty"` // package the manifest names
	Serving        string          `json:"serving,omitempty"` // package pulld reports serving
	State          string          `json:"state,omitempty"`
	Step           manifest.Step   `json:"step,omitempty"`
	Error          string          `json:"error,omitempty"`
	Drift          bool            `json:"drift"`            // serving ≠ desired, and nothing under way or failed: drift nobody asked for
	Failed         bool            `json:"failed"`           // FAILED, ROLLED_BACK or held: needs attention
	InProgress     bool            `json:"in_progress"`      // DEPLOYING, or the host has yet to read the newest revision
	Action         manifest.Action `json:"action,omitempty"` // while DEPLOYING: deploy, rollback (no download), restart, stop (removing)
	NewerAvailable bool            `json:"newer_available"`  // a newer package of the app exists
	Allowed        bool            `json:"allowed"`          // the config allows the app here
}

// ServerInfo is one server in GET /api/servers.
type ServerInfo struct {
	Name          string           `json:"name"`
	InConfig      bool             `json:"in_config"`
	Groups        []string         `json:"groups"`
	Allowed       []string         `json:"allowed"`
	Version       string           `json:"version,omitempty"`  // the manifest's ETag value
	Manifest      json.RawMessage  `json:"manifest,omitempty"` // desired state, canonical form
	ManifestError string           `json:"manifest_error,omitempty"`
	Status        *manifest.Status `json:"status"` // actual state as pulld reported it; null before its first report
	StatusError   string           `json:"status_error,omitempty"`
	Stale         bool             `json:"stale"`   // no heartbeat for three poll periods
	Pending       bool             `json:"pending"` // pulld has not acted on this revision yet
	Envs          []EnvInfo        `json:"envs"`
}

// Record is one audit record in GET /api/servers/{server}/history.
type Record struct {
	Time    time.Time       `json:"time"`
	User    string          `json:"user"`
	Action  string          `json:"action"`
	Changes []string        `json:"changes"`
	Before  json.RawMessage `json:"before"`
	After   json.RawMessage `json:"after"`
}

// PackageInfo is one package in GET /api/apps/{app}/packages.
type PackageInfo struct {
	Name   string    `json:"name"`
	Built  time.Time `json:"built"`
	Commit string    `json:"commit"`
	Branch string    `json:"branch,omitempty"`
	Repo   string    `json:"repo,omitempty"`
	User   string    `json:"user,omitempty"`
	Host   string    `json:"host,omitempty"`
	Dirty  bool      `json:"dirty"`
	Note   string    `json:"note,omitempty"`
	SHA256 string    `json:"sha256,omitempty"`
	Format string    `json:"format"`
	Size   int64     `json:"size"`
	Error  string    `json:"error,omitempty"` // the metadata could not be read
}

// GroupSummary is one group in GET /api/groups.
type GroupSummary struct {
	Name     string         `json:"name"`
	InConfig bool           `json:"in_config"`
	Allowed  []string       `json:"allowed"`
	Exists   bool           `json:"exists"` // has a manifest
	Revision int64          `json:"revision,omitempty"`
	Version  string         `json:"version,omitempty"`
	Error    string         `json:"manifest_error,omitempty"`
	Members  int            `json:"members"`
	Stale    int            `json:"stale"`     // members with no heartbeat for three poll periods
	Pending  int            `json:"pending"`   // members that have not acted on the current revision
	Override int            `json:"overrides"` // member envs pinned by the member's own manifest
	Held     int            `json:"held"`      // member envs pulld leaves as they are (see their status's held)
	States   map[string]int `json:"states"`    // member envs by state
	Done     int            `json:"done"`      // member envs serving the group's entry
	// Rollouts are the group's active rollouts, from its manifest.
	Rollouts []ActiveRollout `json:"rollouts"`
	// Envs are the entries of its manifest, each with its members counted.
	Envs []EnvSummary `json:"envs"`
}

// EnvSummary is one entry of a group's manifest in GET /api/groups: the
// build it names and the members' env by state.
type EnvSummary struct {
	Env     string         `json:"env"`
	Package string         `json:"package"`
	Done    int            `json:"done"`   // members serving it
	States  map[string]int `json:"states"` // members' env by state
}

// ActiveRollout names an active rollout and where it stands.
type ActiveRollout struct {
	Env  string `json:"env"`
	ID   string `json:"id"`
	Step string `json:"step"` // "staging", "canaries", "50%"
	URL  string `json:"url"`  // its page
}

// Servers is the answer of GET /api/servers.
type Servers struct {
	AsOf    time.Time    `json:"as_of"` // when pushui last listed the bucket in full
	Servers []ServerInfo `json:"servers"`
}

// Groups is the answer of GET /api/groups.
type Groups struct {
	AsOf   time.Time      `json:"as_of"`
	Groups []GroupSummary `json:"groups"`
}

// History is the answer of GET /api/servers/{server}/history and
// /api/groups/{group}/history: one of Server and Group is set.
type History struct {
	Server  string   `json:"server,omitempty"`
	Group   string   `json:"group,omitempty"`
	Records []Record `json:"records"`
}

// Packages is the answer of GET /api/apps/{app}/packages, newest first.
type Packages struct {
	App      string        `json:"app"`
	Packages []PackageInfo `json:"packages"`
}

// RolloutPage is the answer of GET /api/rollouts: a page of records,
// newest first, and the cursor of the next page ("" on the last).
type RolloutPage struct {
	Rollouts []*manifest.RolloutRecord `json:"rollouts"`
	Next     string                    `json:"next,omitempty"`
}

// Live is the answer of GET /api/live: the generation of what pushui's
// pages show.
type Live struct {
	Generation string `json:"generation"`
}
