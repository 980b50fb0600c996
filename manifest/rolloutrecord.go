package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// RolloutState is where a rollout stands.
type RolloutState string

// The states of a rollout. Running and paused rollouts are active: at most
// one per group env.
const (
	RolloutRunning   RolloutState = "running"
	RolloutPaused    RolloutState = "paused"
	RolloutSucceeded RolloutState = "succeeded"
	RolloutFailed    RolloutState = "failed"
	RolloutReverted  RolloutState = "reverted"
	RolloutAborted   RolloutState = "aborted"
	// RolloutInvalid is never stored: listings, pages and the API show a
	// record that does not parse or contradicts itself in this state, with
	// the reason, and the controller leaves it alone until it is aborted.
	RolloutInvalid RolloutState = "invalid"
)

// Active reports whether s is running or paused.
func (s RolloutState) Active() bool { return s == RolloutRunning || s == RolloutPaused }

// stored reports whether s is one of the states a record may hold.
func (s RolloutState) stored() bool {
	switch s {
	case RolloutRunning, RolloutPaused, RolloutSucceeded, RolloutFailed, RolloutReverted, RolloutAborted:
		return true
	}
	return false
}

// StepOutcome is how a rollout step ended.
type StepOutcome string

// The outcomes of a step; a step under way has none.
const (
	StepDone    StepOutcome = "done"    // its hosts served the build healthy
	StepFailed  StepOutcome = "failed"  // more hosts failed than allowed, or it made no progress
	StepStaged  StepOutcome = "staged"  // stage_first: enough members staged the build
	StepSkipped StepOutcome = "skipped" // its wave put no host on the build (members exist, none fell in it)
	StepEmpty   StepOutcome = "empty"   // the group had no members (allow_empty)
)

func (o StepOutcome) known() bool {
	switch o {
	case "", StepDone, StepFailed, StepStaged, StepSkipped, StepEmpty:
		return true
	}
	return false
}

// ClockSkew is how far apart pushpull allows two machines' clocks to be
// when it compares times one wrote with times another wrote: a rollout's
// steps written by two controllers, a host's status against the
// controller's clock, an outcome against the audit record of its change.
const ClockSkew = 30 * time.Second

// MaxRolloutLease is the longest lease a controller may take on a rollout.
// A record whose lease runs out later than this from now is invalid (a
// hand-written lease of 2099 must not block a rollout forever).
const MaxRolloutLease = 10 * time.Minute

// Duration is a time.Duration that JSON holds as a Go duration string
// ("90s", "5m").
type Duration time.Duration

// String is the Go duration string ("1m30s").
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// Quota is a number of hosts, absolute ("2") or a share of the group
// ("10%"), as JSON holds it: a number or a string.
type Quota struct {
	N       int
	Percent float64 // used when IsPercent
	// IsPercent says the quota is a share.
	IsPercent bool
}

// Of returns the quota for a group of n hosts, rounding a share up.
func (q Quota) Of(n int) int {
	if q.IsPercent {
		return int(math.Ceil(q.Percent * float64(n) / 100))
	}
	return q.N
}

// MarshalJSON writes N, or "P%".
func (q Quota) MarshalJSON() ([]byte, error) {
	if q.IsPercent {
		return json.Marshal(strconv.FormatFloat(q.Percent, 'f', -1, 64) + "%")
	}
	return json.Marshal(q.N)
}

// UnmarshalJSON reads a non-negative number, or a string "P%" (0–100).
func (q *Quota) UnmarshalJSON(b []byte) error {
	var n int
	if err := json.Unmarshal(b, &n); err == nil {
		if n < 0 {
			return fmt.Errorf("quota %d is negative", n)
		}
		*q = Quota{N: n}
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("quota %s: want a number of hosts or \"P%%\"", b)
	}
	p, ok := strings.CutSuffix(s, "%")
	v, err := strconv.ParseFloat(p, 64)
	if !ok || err != nil || v < 0 || v > 100 {
		return fmt.Errorf("quota %q: want a number of hosts or \"P%%\" with P from 0 to 100", s)
	}
	*q = Quota{Percent: v, IsPercent: true}
	return nil
}

// RolloutStrategy is how a rollout proceeds (POST /api/rollouts), after
// WithDefaults.
type RolloutStrategy struct {
	Group string `json:"group,omitempty"`
	// Env is the group's env to roll out; its app when empty.
	Env     string      `json:"env,omitempty"`
	Package PackageName `json:"package,omitzero"`
	// Canary is how many members take the new build first, by name.
	Canary int `json:"canary"`
	// Steps are the shares, in percent, of the waves after the canaries;
	// the last must be 100.
	Steps []float64 `json:"steps"`
	// MinHealthyTime is how long a host must serve the build healthy to
	// count; HealthyDeadline how long a host of a step has to get there;
	// ProgressDeadline how long a step may go without any host getting
	// there.
	MinHealthyTime   Duration `json:"min_healthy_time"`
	HealthyDeadline  Duration `json:"healthy_deadline"`
	ProgressDeadline Duration `json:"progress_deadline"`
	// MaxFailures is how many hosts may fail before the rollout does.
	MaxFailures Quota `json:"max_failures"`
	// AutoRevert sends every member back to the previous build when the
	// rollout fails.
	AutoRevert bool `json:"auto_revert"`
	// PauseAfterCanary stops after the canaries, until resumed.
	PauseAfterCanary bool `json:"pause_after_canary"`
	// StageFirst has every member stage the build, and waits for
	// MinStaged of them, before any switches.
	StageFirst bool  `json:"stage_first"`
	MinStaged  Quota `json:"min_staged"`
	// AllowEmpty lets a rollout start on a group with no members, and
	// lets its steps pass with none (each marked "empty"). Without it a
	// group with no members is refused, and a step that finds none waits
	// for members until the progress deadline.
	AllowEmpty bool `json:"allow_empty,omitempty"`
}

// Defaults of a rollout strategy.
var (
	DefaultRolloutSteps            = []float64{10, 50, 100}
	DefaultRolloutMinHealthyTime   = Duration(10 * time.Second)
	DefaultRolloutHealthyDeadline  = Duration(5 * time.Minute)
	DefaultRolloutProgressDeadline = Duration(10 * time.Minute)
)

// DefaultRolloutStrategy is the strategy a JSON strategy is decoded over
// (so that what it leaves out has its default, and an explicit
// "min_healthy_time": "0s" stays 0): one canary, steps 10/50/100,
// min_healthy_time 10 s, healthy_deadline 5 min, progress_deadline 10 min,
// max_failures 0, and min_staged 100% when stage_first.
func DefaultRolloutStrategy() RolloutStrategy {
	return RolloutStrategy{
		Canary:           1,
		Steps:            slices.Clone(DefaultRolloutSteps), // decoding reuses a slice's array
		MinHealthyTime:   DefaultRolloutMinHealthyTime,
		HealthyDeadline:  DefaultRolloutHealthyDeadline,
		ProgressDeadline: DefaultRolloutProgressDeadline,
	}
}

// UnmarshalJSON decodes a strategy over DefaultRolloutStrategy, refusing
// unknown fields.
func (s *RolloutStrategy) UnmarshalJSON(b []byte) error {
	v, err := DefaultRolloutStrategy().Decode(b)
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// Decode returns s with the fields that the JSON object data gives
// replaced, refusing unknown fields: how pushui reads POST /api/rollouts
// over the group's default strategy.
func (s RolloutStrategy) Decode(data []byte) (RolloutStrategy, error) {
	type plain RolloutStrategy // without UnmarshalJSON
	p := plain(s)
	p.Steps = slices.Clone(s.Steps) // decoding reuses a slice's array
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return s, err
	}
	return RolloutStrategy(p), nil
}

// WithDefaults returns s with what only its other fields decide: env the
// package's app, min_staged 100% with stage_first, and the default steps
// and deadlines where s has none (a strategy built in Go; one decoded
// from JSON has them already). A zero min_healthy_time stays zero: a host
// counts as soon as it serves the build (healthy, with a health check).
func (s RolloutStrategy) WithDefaults() RolloutStrategy {
	if s.Env == "" {
		s.Env = s.Package.App
	}
	if s.Steps == nil {
		s.Steps = slices.Clone(DefaultRolloutSteps)
	}
	if s.HealthyDeadline == 0 {
		s.HealthyDeadline = DefaultRolloutHealthyDeadline
	}
	if s.ProgressDeadline == 0 {
		s.ProgressDeadline = DefaultRolloutProgressDeadline
	}
	if s.StageFirst && s.MinStaged == (Quota{}) {
		s.MinStaged = Quota{Percent: 100, IsPercent: true}
	}
	return s
}

// Validate checks a strategy after WithDefaults.
func (s RolloutStrategy) Validate() error {
	if err := CheckName("group", s.Group); err != nil {
		return err
	}
	if err := CheckName("env", s.Env); err != nil {
		return err
	}
	if s.Package.IsZero() {
		return errors.New("rollout: no package")
	}
	return s.validateShape()
}

// validateShape checks what a strategy says about the steps, whatever its
// group and package: a default strategy in the push config has neither.
func (s RolloutStrategy) validateShape() error {
	switch {
	case s.Canary < 0:
		return errors.New("rollout: negative canary")
	case len(s.Steps) == 0 || s.Steps[len(s.Steps)-1] != 100:
		return errors.New("rollout: steps must end at 100")
	case s.MinHealthyTime < 0 || s.HealthyDeadline <= 0 || s.ProgressDeadline <= 0:
		return errors.New("rollout: durations must be positive")
	}
	for i, p := range s.Steps {
		if p <= 0 || p > 100 || i > 0 && p <= s.Steps[i-1] {
			return fmt.Errorf("rollout: steps %v must rise from above 0 to 100", s.Steps)
		}
	}
	return nil
}

// RolloutStep is one step of a rollout as its record keeps it: the
// canaries (Percent 0, with Canaries named) or one wave's share.
type RolloutStep struct {
	Percent  float64   `json:"percent"`
	Canaries []string  `json:"canaries,omitempty"`
	Started  time.Time `json:"started"`
	Ended    time.Time `json:"ended,omitzero"`
	// Hosts is how many members the step had put on the new build, Done
	// how many of them served it healthy for min_healthy_time, Failed
	// their names that did not by healthy_deadline.
	Hosts   int         `json:"hosts"`
	Done    int         `json:"done"`
	Failed  []string    `json:"failed,omitempty"`
	Outcome StepOutcome `json:"outcome,omitempty"`
	// Suspect lists the hosts of the step whose status the controller did
	// not trust ("web-3: status names server web-1"): never counted as
	// done, failed when they stay so past healthy_deadline.
	Suspect []string `json:"suspect,omitempty"`
}

// Label names the step as pages, logs and audit records show it:
// "canaries", "staging" (the step before them, when stage_first), or the
// wave's share ("50%").
func (s RolloutStep) Label() string {
	switch {
	case s.Percent == 0 && len(s.Canaries) > 0:
		return "canaries"
	case s.Percent == 0:
		return "staging"
	}
	return strconv.FormatFloat(s.Percent, 'f', -1, 64) + "%"
}

// RolloutLease says which controller drives a rollout until when.
type RolloutLease struct {
	Holder  string    `json:"holder"`
	Expires time.Time `json:"expires"`
}

// RolloutRecord is rollouts/{group}/{env}/{id}.json: a rollout's strategy
// and where it stands. Its controller rewrites it conditionally, under a
// lease, so that one controller at a time drives it.
type RolloutRecord struct {
	ID       string          `json:"id"`
	Strategy RolloutStrategy `json:"strategy"`
	// Previous is what the group served before (auto_revert's target).
	Previous PackageName  `json:"previous,omitzero"`
	State    RolloutState `json:"state"`
	Reason   string       `json:"reason,omitempty"` // why it failed, was aborted, reverted
	// Step indexes History: the step under way, or the last.
	Step    int           `json:"step"`
	History []RolloutStep `json:"history"`
	// Staging is set while stage_first waits for members to stage.
	Staging bool         `json:"staging,omitempty"`
	Lease   RolloutLease `json:"lease,omitzero"` // none once it has ended
	Created time.Time    `json:"created,omitzero"`
	Updated time.Time    `json:"updated,omitzero"`
}

// Marshal encodes r as indented JSON with a trailing newline.
func (r *RolloutRecord) Marshal() []byte {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		panic(err) // plain values: cannot fail
	}
	return append(b, '\n')
}

// ParseRolloutRecord decodes a record written by Marshal, refusing unknown
// fields and duplicate keys.
func ParseRolloutRecord(data []byte) (*RolloutRecord, error) {
	if t := bytes.TrimSpace(data); len(t) == 0 || t[0] != '{' {
		return nil, errors.New("invalid rollout record: not a JSON object")
	}
	var r RolloutRecord
	if err := decodeStrict(data, &r); err != nil {
		return nil, fmt.Errorf("invalid rollout record: %w", err)
	}
	if err := CheckName("rollout", r.ID); err != nil {
		return nil, fmt.Errorf("invalid rollout record: %w", err)
	}
	if err := r.check(); err != nil {
		return nil, fmt.Errorf("invalid rollout record: %w", err)
	}
	return &r, nil
}

// check reports what makes a decoded record contradict itself: a bad
// strategy, a state or outcome outside the known set, a step outside its
// history, steps that are not the strategy's, times out of order (beyond
// ClockSkew), names that are not names.
func (r *RolloutRecord) check() error {
	if err := r.Strategy.Validate(); err != nil {
		return err
	}
	switch {
	case !r.State.stored():
		return fmt.Errorf("state %q is not one of running, paused, succeeded, failed, reverted, aborted", r.State)
	case len(r.History) == 0:
		return errors.New("no steps in its history")
	case r.Step < 0 || r.Step >= len(r.History):
		return fmt.Errorf("step %d is outside its history of %d steps", r.Step, len(r.History))
	case r.Created.IsZero() || r.Updated.IsZero():
		return errors.New("no created or updated time")
	case r.Updated.Before(r.Created.Add(-ClockSkew)):
		return fmt.Errorf("updated %s before it was created %s", r.Updated.Format(time.RFC3339), r.Created.Format(time.RFC3339))
	case r.Staging && (r.Step != 0 || !r.Strategy.StageFirst):
		return errors.New("staging, but not in the first step of a stage_first rollout")
	case r.Lease.Holder != "" && r.Lease.Expires.IsZero():
		return errors.New("a lease holder with no expiry")
	}
	for i, st := range r.History {
		at := fmt.Sprintf("step %d", i)
		switch {
		case !st.Outcome.known():
			return fmt.Errorf("%s: outcome %q is not one of done, failed, staged, skipped, empty", at, st.Outcome)
		case st.Percent != 0 && !slices.Contains(r.Strategy.Steps, st.Percent):
			return fmt.Errorf("%s: %v%% is not one of the strategy's steps %v", at, st.Percent, r.Strategy.Steps)
		case st.Hosts < 0 || st.Done < 0:
			return fmt.Errorf("%s: negative host counts", at)
		case st.Started.IsZero():
			return fmt.Errorf("%s: no start time", at)
		case st.Started.Before(r.Created.Add(-ClockSkew)):
			return fmt.Errorf("%s: started %s, before the rollout was created", at, st.Started.Format(time.RFC3339))
		case !st.Ended.IsZero() && st.Ended.Before(st.Started.Add(-ClockSkew)):
			return fmt.Errorf("%s: ended before it started", at)
		case i > 0 && st.Started.Before(r.History[i-1].Started.Add(-ClockSkew)):
			return fmt.Errorf("%s: started before step %d", at, i-1)
		case i < len(r.History)-1 && st.Outcome == "":
			return fmt.Errorf("%s: a step before the last with no outcome", at)
		}
		for _, n := range slices.Concat(st.Canaries, st.Failed) {
			if err := CheckName("server", n); err != nil {
				return fmt.Errorf("%s: %w", at, err)
			}
		}
	}
	return nil
}

// CheckLease reports a lease that runs out more than MaxRolloutLease (and
// ClockSkew) after now: no controller takes such a lease, so the record
// was written by hand or by a broken writer, and obeying it would stop the
// rollout until then.
func (r *RolloutRecord) CheckLease(now time.Time) error {
	if limit := now.Add(MaxRolloutLease + ClockSkew); r.Lease.Expires.After(limit) {
		return fmt.Errorf("invalid rollout record: its lease, held by %q, runs out at %s, more than %v from now", r.Lease.Holder, r.Lease.Expires.Format(time.RFC3339), MaxRolloutLease)
	}
	return nil
}

// CurrentRollout is rollouts/_current/{group}/{env}.json: which rollout of
// a group env is its latest. Starting a rollout writes it conditionally on
// the version read (create-only when there is none), so that of two starts
// at once exactly one wins; the controller finds the rollouts to drive by
// listing these, one per group env, however many records the history
// holds.
type CurrentRollout struct {
	ID string `json:"id"`
}

// Marshal encodes c as JSON with a trailing newline.
func (c CurrentRollout) Marshal() []byte {
	b, _ := json.Marshal(c)
	return append(b, '\n')
}

// ParseCurrentRollout decodes a CurrentRollout, refusing unknown fields,
// duplicate keys and an ID that is not a name.
func ParseCurrentRollout(data []byte) (CurrentRollout, error) {
	var c CurrentRollout
	if t := bytes.TrimSpace(data); len(t) == 0 || t[0] != '{' {
		return c, errors.New("invalid current rollout: not a JSON object")
	}
	if err := decodeStrict(data, &c); err != nil {
		return c, fmt.Errorf("invalid current rollout: %w", err)
	}
	if err := CheckName("rollout", c.ID); err != nil {
		return c, fmt.Errorf("invalid current rollout: %w", err)
	}
	return c, nil
}

// RolloutHome is what rollouts/_ids/{id}.json says: the group and env
// whose records hold rollout id. It is written once, when the rollout
// starts, only if absent, which is what makes an id unique across groups
// and envs, and lets a rollout be found by its id alone.
type RolloutHome struct {
	Group string `json:"group"`
	Env   string `json:"env"`
}

// Marshal encodes h as JSON with a trailing newline.
func (h RolloutHome) Marshal() []byte {
	b, _ := json.Marshal(h)
	return append(b, '\n')
}

// ParseRolloutHome decodes a rollout's home strictly: a JSON object with
// a valid group and env and nothing else.
func ParseRolloutHome(data []byte) (RolloutHome, error) {
	var h RolloutHome
	if t := bytes.TrimSpace(data); len(t) == 0 || t[0] != '{' {
		return h, errors.New("invalid rollout home: not a JSON object")
	}
	if err := decodeStrict(data, &h); err != nil {
		return h, fmt.Errorf("invalid rollout home: %w", err)
	}
	if err := CheckName("group", h.Group); err != nil {
		return h, fmt.Errorf("invalid rollout home: %w", err)
	}
	if err := CheckName("env", h.Env); err != nil {
		return h, fmt.Errorf("invalid rollout home: %w", err)
	}
	return h, nil
}
