package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// State is where an env stands on a host, in Teletraan's vocabulary.
type State string

// The states an env can report.
const (
	StateUnknown    State = "UNKNOWN"       // nothing known yet
	StateDeploying  State = "DEPLOYING"     // a deploy, rollback or restart is under way
	StateServing    State = "SERVING_BUILD" // the desired build is serving
	StateFailed     State = "FAILED"        // the last attempt failed; see Error
	StateRolledBack State = "ROLLED_BACK"   // the desired build failed; the previous one serves again
	StateStopped    State = "STOPPED"       // STOPPING ran; nothing serves
)

// Status is what pulld reports about one server, at status/{server}.json,
// after each reconcile and as a heartbeat.
type Status struct {
	Server       string    `json:"server"`
	PulldVersion string    `json:"pulld_version"`
	Host         HostInfo  `json:"host"`
	Time         time.Time `json:"time"` // when this status was written
	// PollInterval is pulld's poll period, so readers can tell a stale host
	// (no heartbeat for three periods) from a quiet one.
	PollSeconds int64 `json:"poll_seconds"`
	// ManifestRevision and ManifestVersion identify the manifest pulld last
	// acted on; ManifestError is set when the newest one could not be used.
	ManifestRevision int64       `json:"manifest_revision"`
	ManifestVersion  string      `json:"manifest_version,omitempty"`
	ManifestError    string      `json:"manifest_error,omitempty"`
	Envs             []EnvStatus `json:"envs"`
}

// HostInfo describes the host, from the OS and Teletraan's host_info file.
type HostInfo struct {
	Hostname string   `json:"hostname"`
	ID       string   `json:"id,omitempty"`
	Groups   []string `json:"groups,omitempty"`
	// ComputeEnvType is COMPUTE_ENV_TYPE of the host's scripts (Teletraan's
	// PRODUCTION when empty).
	ComputeEnvType string `json:"compute_env_type,omitempty"`
}

// EnvStatus is the reported state of one env.
type EnvStatus struct {
	Env      string    `json:"env"`
	App      string    `json:"app"`
	Desired  string    `json:"desired,omitempty"` // package the manifest names
	Serving  string    `json:"serving,omitempty"` // package `current` points at
	State    State     `json:"state"`
	Step     string    `json:"step,omitempty"` // the step reached (e.g. POST_RESTART)
	Error    string    `json:"error,omitempty"`
	Output   string    `json:"output,omitempty"` // last 10 KB of the failing script's output
	DeployID string    `json:"deploy_id,omitempty"`
	Updated  time.Time `json:"updated"`
}

// Lookup returns the status of env, if reported.
func (s *Status) Lookup(env string) (EnvStatus, bool) {
	for _, e := range s.Envs {
		if e.Env == env {
			return e, true
		}
	}
	return EnvStatus{}, false
}

// Stale reports whether the status is older than three poll periods at now.
func (s *Status) Stale(now time.Time) bool {
	p := time.Duration(s.PollSeconds) * time.Second
	if p <= 0 {
		p = 5 * time.Minute
	}
	return now.Sub(s.Time) > 3*p
}

// ParseStatus decodes a status document: a JSON object. Unknown fields are
// ignored, so an older reader can show a newer pulld's status; duplicate
// keys are refused.
func ParseStatus(data []byte) (*Status, error) {
	var s Status
	if t := bytes.TrimSpace(data); len(t) == 0 || t[0] != '{' {
		return nil, errors.New("invalid status: not a JSON object")
	}
	if err := checkDuplicateKeys(data); err != nil {
		return nil, fmt.Errorf("invalid status: %w", err)
	}
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("invalid status: %w", err)
	}
	return &s, nil
}

// Marshal returns the status as indented JSON with a trailing newline.
func (s *Status) Marshal() []byte {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		panic(err)
	}
	return append(b, '\n')
}
