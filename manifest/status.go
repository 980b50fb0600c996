package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
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
	Server       string   `json:"server"`
	PulldVersion string   `json:"pulld_version"`
	Host         HostInfo `json:"host"`
	// Time is when pulld last wrote or confirmed this status. pulld leaves
	// it out of what it writes, so that an unchanged status is rewritten
	// with the same bytes as a heartbeat; readers take it from the object's
	// modification time (blobstore.ReadStatus, ListStatuses).
	Time time.Time `json:"time,omitzero"`
	// PollInterval is pulld's poll period, so readers can tell a stale host
	// (no heartbeat for three periods) from a quiet one.
	PollSeconds int64 `json:"poll_seconds"`
	// ManifestRevision and ManifestVersion identify the manifest pulld last
	// acted on; ManifestError is set when the newest one could not be used.
	ManifestRevision int64  `json:"manifest_revision"`
	ManifestVersion  string `json:"manifest_version,omitempty"`
	ManifestError    string `json:"manifest_error,omitempty"`
	// Groups are the groups the host is in (pulld -groups, or the groups=
	// line of host_info), in its order, with the revision of each group's
	// manifest pulld last acted on.
	Groups []GroupStatus `json:"groups,omitempty"`
	Envs   []EnvStatus   `json:"envs"`
}

// GroupStatus is what a host reports about one of its groups.
type GroupStatus struct {
	Name string `json:"name"`
	// Revision and Version identify the group manifest pulld last acted
	// on; Missing is set when the group has no manifest.
	Revision int64  `json:"revision"`
	Version  string `json:"version,omitempty"`
	Missing  bool   `json:"missing,omitempty"`
}

// GroupNames returns the names of the host's groups.
func (s *Status) GroupNames() []string {
	out := make([]string, len(s.Groups))
	for i, g := range s.Groups {
		out[i] = g.Name
	}
	return out
}

// InGroup reports whether the host is in group.
func (s *Status) InGroup(group string) bool {
	for _, g := range s.Groups {
		if g.Name == group {
			return true
		}
	}
	return false
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
	Env     string `json:"env"`
	App     string `json:"app"`
	Desired string `json:"desired,omitempty"` // package the manifest names
	Serving string `json:"serving,omitempty"` // package `current` points at
	State   State  `json:"state"`
	Step    Step   `json:"step,omitempty"` // the step reached (e.g. POST_RESTART)
	Error   string `json:"error,omitempty"`
	Output  string `json:"output,omitempty"` // last 10 KB of the failing script's output
	// ExitCode is the failing script's exit code, 0 when it did not exit
	// with one.
	ExitCode int    `json:"exit_code,omitempty"`
	DeployID string `json:"deploy_id,omitempty"`
	// Action is what the host is doing while the env is DEPLOYING:
	// "deploy" (a download and install), "rollback" (a switch to a build
	// kept on the host: no download), "restart" or "stop" (the env is
	// being removed).
	Action Action `json:"action,omitempty"`
	// Attempts is how many times in a row the host tried to reach the
	// env's desired state and failed; NextAttempt is when it tries again.
	Attempts    int       `json:"attempts,omitempty"`
	NextAttempt time.Time `json:"next_attempt,omitzero"`
	Updated     time.Time `json:"updated"`
	// Source says where the env's desired entry came from: "server" (the
	// host's own manifest) or "group:NAME" (Target.Source); empty when no
	// document names the env.
	Source EntrySource `json:"source,omitempty"`
	// Held, when set, says why pulld leaves the env exactly as it is: two
	// of the host's groups name it, or a group's manifest is missing.
	Held string `json:"held,omitempty"`
	// Rollout is the ID of the rollout the env's entry is under, if any;
	// Desired is then the side of it the host is on.
	Rollout string `json:"rollout,omitempty"`
	// Staged is the package the host holds unpacked beside what serves,
	// for a switch with no download (an entry's stage).
	Staged string `json:"staged,omitempty"`
	// Healthy is the outcome of the entry's health check while the env
	// serves (nil: no check, or none yet); HealthySince is when it last
	// became healthy, and HealthError why the last check failed.
	Healthy      *bool     `json:"healthy,omitempty"`
	HealthySince time.Time `json:"healthy_since,omitzero"`
	HealthError  string    `json:"health_error,omitempty"`
	// Recent are the outcomes of the env's last finished actions on this
	// host, newest first, at most RecentOutcomes of them: what a history
	// page says the host did with each change after a later one replaced
	// it.
	Recent []Outcome `json:"recent,omitempty"`
}

// RecentOutcomes is how many outcomes an env's status keeps (EnvStatus.Recent).
const RecentOutcomes = 8

// Outcome is how one finished action on an env ended.
type Outcome struct {
	// Package is the package the action was for: the entry's build for a
	// deploy, rollback or restart, the serving build for a stop.
	Package string `json:"package"`
	// Action is "deploy", "rollback", "restart" or "stop".
	Action Action `json:"action"`
	// State is where the env stood afterwards: SERVING_BUILD, ROLLED_BACK,
	// FAILED or STOPPED.
	State    State     `json:"state"`
	DeployID string    `json:"deploy_id,omitempty"`
	Time     time.Time `json:"time"`
	// Step, Error, ExitCode and Output say, for an action that failed,
	// where and why: the step that failed, the error, the script's exit
	// code (0 when it did not exit with one: a timeout, a download), and
	// the first OutcomeOutput bytes of its output.
	Step     Step   `json:"step,omitempty"`
	Error    string `json:"error,omitempty"`
	ExitCode int    `json:"exit_code,omitempty"`
	Output   string `json:"output,omitempty"`
}

// OutcomeOutput bounds the output an Outcome keeps: the first lines, which
// usually say what went wrong, for every failure a host remembers.
const OutcomeOutput = 1024

// Failed reports whether the outcome is a failure: the action's build
// rolled back or failed.
func (o Outcome) Failed() bool { return o.State == StateRolledBack || o.State == StateFailed }

// Head returns the first lines of output, at most OutcomeOutput bytes,
// cut at a line's end where one falls in the second half.
func Head(output string) string {
	if len(output) <= OutcomeOutput {
		return output
	}
	cut := output[:OutcomeOutput]
	if i := strings.LastIndexByte(cut, '\n'); i >= OutcomeOutput/2 {
		cut = cut[:i+1]
	}
	return cut
}

// Remember returns recent with o put first, keeping at most RecentOutcomes;
// recent is not modified.
func Remember(recent []Outcome, o Outcome) []Outcome {
	out := make([]Outcome, 0, min(len(recent)+1, RecentOutcomes))
	out = append(out, o)
	for _, r := range recent {
		if len(out) == RecentOutcomes {
			break
		}
		out = append(out, r)
	}
	return out
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

// ErrInvalidStatus is wrapped by every error ParseStatus returns.
var ErrInvalidStatus = errors.New("invalid status")

// ErrInconsistentStatus is wrapped when a status contradicts where it is
// stored or the clock: status/web-3.json naming server web-1, or a time in
// the future. Such a status is shown as what it is, never as serving.
var ErrInconsistentStatus = errors.New("inconsistent status")

// CheckTimes reports a status that claims a time later than now (beyond
// ClockSkew): its own, or an env's update or healthy-since time. pulld
// writes none of those ahead of its clock, so such a status comes from a
// host whose clock is wrong or from another writer; readers show it as
// what it is and never count it as serving.
func (s *Status) CheckTimes(now time.Time) error {
	limit := now.Add(ClockSkew)
	if s.Time.After(limit) {
		return fmt.Errorf("status of %s: its time %s is in the future: %w", s.Server, s.Time.UTC().Format(time.RFC3339), ErrInconsistentStatus)
	}
	for _, e := range s.Envs {
		for _, t := range []time.Time{e.Updated, e.HealthySince} {
			if t.After(limit) {
				return fmt.Errorf("status of %s: env %s claims a time in the future (%s): %w", s.Server, e.Env, t.UTC().Format(time.RFC3339), ErrInconsistentStatus)
			}
		}
	}
	return nil
}

// ParseStatus decodes a status document: a JSON object. Unknown fields are
// ignored, so an older reader can show a newer pulld's status; duplicate
// keys are refused, and so is a state, step, action or entry source that
// is not pushpull's (the vocabulary of vocab.go).
func ParseStatus(data []byte) (*Status, error) {
	var s Status
	if t := bytes.TrimSpace(data); len(t) == 0 || t[0] != '{' {
		return nil, fmt.Errorf("%w: not a JSON object", ErrInvalidStatus)
	}
	if err := checkDuplicateKeys(data); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidStatus, err)
	}
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidStatus, err)
	}
	if err := s.checkVocabulary(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidStatus, err)
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
