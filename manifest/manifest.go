package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
)

// ErrInvalidManifest is wrapped by every error Parse returns.
var ErrInvalidManifest = errors.New("invalid manifest")

// Policy says what pulld does when a step of an env's deploy fails.
type Policy string

// The failure policies. The empty Policy means PolicyRollback.
const (
	PolicyRollback Policy = "rollback" // return to the previously serving build
	PolicyContinue Policy = "continue" // leave the env as it is, marked FAILED
	PolicyStop     Policy = "stop"     // run STOPPING and take the env out of service
)

// Manifest is the desired state of one server, stored at
// servers/{server}.json. The zero value is an empty manifest.
type Manifest struct {
	// Revision increases by one on every write, so no two versions of a
	// manifest have the same bytes.
	Revision int64
	// Packages lists what the server runs, one entry per env, in the order
	// pulld deploys them.
	Packages []Entry
}

// Entry is one env of a manifest: a package and how to run it.
type Entry struct {
	Package PackageName
	// Env names the deploy environment; empty means the package's app.
	Env string
	// Config holds values passed to scripts as environment variables and
	// to templates; keys match ^[A-Za-z_][A-Za-z0-9_]*$ and are
	// case-sensitive (log_level fills ${TELETRAAN_log_level}).
	Config map[string]string
	// OnFailure is the failure policy; empty means PolicyRollback.
	OnFailure Policy
	// Restart is an opaque token; changing it asks the host to restart the env.
	Restart string
	// Rollout, when set, moves the members of a group from the rollout's
	// previous package to Package a share at a time; For resolves it for
	// one server.
	Rollout *Rollout
	// Health, when set, is the check the host runs while the env serves.
	Health *Health
	// Stage, when set, asks the host to download and unpack that package
	// of the app beside what serves, for a later switch with no download.
	Stage PackageName
}

// EnvName returns the entry's env: Env, or the package's app when Env is empty.
func (e Entry) EnvName() string {
	if e.Env != "" {
		return e.Env
	}
	return e.Package.App
}

// Policy returns the entry's failure policy, PolicyRollback when unset.
func (e Entry) Policy() Policy {
	if e.OnFailure == "" {
		return PolicyRollback
	}
	return e.OnFailure
}

var configKeyRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// CheckConfigKey reports whether k is a valid config key.
func CheckConfigKey(k string) error {
	if !configKeyRE.MatchString(k) {
		return fmt.Errorf("config key %q: must match %s", k, configKeyRE)
	}
	return nil
}

// Bounds of an entry's config: values become the scripts' environment
// variables, and the kernel refuses to start a program whose environment
// string is over 128 KiB (MAX_ARG_STRLEN) or whose whole environment, with
// its arguments, is over its ARG_MAX (2 MiB by default). Keeping well under
// both turns what would be an E2BIG at the first script into a clear error
// when the manifest is validated.
const (
	MaxConfigValue = 32 << 10  // bytes of one value
	MaxConfigTotal = 256 << 10 // bytes of all KEY=VALUE pairs of one entry
)

// Validate checks one entry on its own: env name, config keys and sizes,
// policy.
func (e Entry) Validate() error {
	if e.Package.IsZero() {
		return errors.New("missing package")
	}
	if e.Env != "" {
		if err := CheckName("env", e.Env); err != nil {
			return err
		}
	}
	total := 0
	for k, v := range e.Config {
		if err := CheckConfigKey(k); err != nil {
			return err
		}
		if len(v) > MaxConfigValue {
			return fmt.Errorf("config value %s is %d bytes, more than %d", k, len(v), MaxConfigValue)
		}
		total += len(k) + len(v) + 2
	}
	if total > MaxConfigTotal {
		return fmt.Errorf("config is %d bytes in all, more than %d (the scripts' environment must stay well under the kernel's limit)", total, MaxConfigTotal)
	}
	switch e.OnFailure {
	case "", PolicyRollback, PolicyContinue, PolicyStop:
	default:
		return fmt.Errorf("on_failure %q: want rollback, continue or stop", e.OnFailure)
	}
	if e.Health != nil {
		if err := e.Health.Validate(); err != nil {
			return err
		}
	}
	if !e.Stage.IsZero() && e.Stage.App != e.Package.App {
		return fmt.Errorf("stage %s is not a package of %s", e.Stage, e.Package.App)
	}
	if e.Rollout != nil {
		return e.Rollout.Validate(e.Package)
	}
	return nil
}

// Validate checks every entry and that env names are unique. Its errors
// name the entry at fault.
func (m *Manifest) Validate() error {
	if m.Revision < 0 {
		return fmt.Errorf("%w: negative revision %d", ErrInvalidManifest, m.Revision)
	}
	seen := make(map[string]int, len(m.Packages))
	for i, e := range m.Packages {
		if err := e.Validate(); err != nil {
			return fmt.Errorf("%w: packages[%d] (%s): %v", ErrInvalidManifest, i, e.Package, err)
		}
		env := e.EnvName()
		if j, dup := seen[env]; dup {
			return fmt.Errorf("%w: packages[%d] (%s): env %q already used by packages[%d]", ErrInvalidManifest, i, e.Package, env, j)
		}
		seen[env] = i
	}
	return nil
}

// Parse decodes and validates a manifest. A manifest is a JSON object with
// a "packages" array (and optionally "revision"), or Skia's legacy bare
// array of package names. Anything else is refused whole: null, {}, an
// object without "packages" or with "packages": null, unknown fields,
// duplicate keys, trailing data, bad names, duplicate envs, bad config keys
// and bad policies, with an error that names the entry. Only an explicit
// empty list ("packages": [] or []) means "run nothing", so a truncated or
// half-generated file can never stop a host's services.
func Parse(data []byte) (*Manifest, error) {
	data = bytes.TrimSpace(data)
	var raw struct {
		Revision *int64             `json:"revision"`
		Packages *[]json.RawMessage `json:"packages"`
	}
	switch {
	case len(data) > 0 && data[0] == '[':
		raw.Packages = new([]json.RawMessage)
		if err := decodeStrict(data, raw.Packages); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalidManifest, err)
		}
	case len(data) > 0 && data[0] == '{':
		if err := decodeStrict(data, &raw); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalidManifest, err)
		}
		if raw.Packages == nil {
			return nil, fmt.Errorf(`%w: no "packages" list (an explicit "packages": [] removes everything)`, ErrInvalidManifest)
		}
	case len(data) == 0:
		return nil, fmt.Errorf(`%w: empty file (an explicit {"packages": []} removes everything)`, ErrInvalidManifest)
	default:
		return nil, fmt.Errorf(`%w: not a JSON object with a "packages" list, nor an array of package names`, ErrInvalidManifest)
	}
	m := &Manifest{Packages: make([]Entry, 0, len(*raw.Packages))}
	if raw.Revision != nil {
		m.Revision = *raw.Revision
	}
	for i, r := range *raw.Packages {
		e, err := parseEntry(r)
		if err != nil {
			return nil, fmt.Errorf("%w: packages[%d]: %v", ErrInvalidManifest, i, err)
		}
		m.Packages = append(m.Packages, e)
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return m, nil
}

type entryJSON struct {
	Package   string            `json:"package"`
	Env       string            `json:"env,omitempty"`
	Config    map[string]string `json:"config,omitempty"`
	OnFailure Policy            `json:"on_failure,omitempty"`
	Restart   string            `json:"restart,omitempty"`
	Rollout   *rolloutJSON      `json:"rollout,omitempty"`
	Health    *healthJSON       `json:"health,omitempty"`
	Stage     string            `json:"stage,omitempty"`
}

func parseEntry(r json.RawMessage) (Entry, error) {
	var ej entryJSON
	r = bytes.TrimSpace(r)
	if len(r) > 0 && r[0] == '"' {
		if err := json.Unmarshal(r, &ej.Package); err != nil {
			return Entry{}, err
		}
	} else if err := decodeStrict(r, &ej); err != nil {
		return Entry{}, err
	}
	p, err := ParsePackageName(ej.Package)
	if err != nil {
		return Entry{}, err
	}
	e := Entry{Package: p, Env: ej.Env, Config: ej.Config, OnFailure: ej.OnFailure, Restart: ej.Restart}
	if r := ej.Rollout; r != nil {
		prev, err := ParsePackageName(r.Previous)
		if err != nil {
			return Entry{}, fmt.Errorf("rollout: previous: %w", err)
		}
		e.Rollout = &Rollout{ID: r.ID, Previous: prev, Percent: r.Percent, Canaries: r.Canaries}
	}
	if ej.Health != nil {
		if e.Health, err = ej.Health.toHealth(); err != nil {
			return Entry{}, err
		}
	}
	if ej.Stage != "" {
		if e.Stage, err = ParsePackageName(ej.Stage); err != nil {
			return Entry{}, fmt.Errorf("stage: %w", err)
		}
	}
	return e, nil
}

// Marshal returns the canonical encoding of m: the object form, two-space
// indented, with a trailing newline. An entry with nothing but its package is
// written as a bare string; defaults (env equal to the app, rollback policy)
// are omitted; config keys are sorted. Parse(m.Marshal()) then Marshal gives
// the same bytes.
func (m *Manifest) Marshal() []byte {
	var out struct {
		Revision int64 `json:"revision"`
		Packages []any `json:"packages"`
	}
	out.Revision = m.Revision
	out.Packages = make([]any, 0, len(m.Packages))
	for _, e := range m.Packages {
		ej := entryJSON{Package: e.Package.String(), Env: e.Env, Config: e.Config, OnFailure: e.OnFailure, Restart: e.Restart}
		if r := e.Rollout; r != nil {
			ej.Rollout = &rolloutJSON{ID: r.ID, Previous: r.Previous.String(), Percent: r.Percent, Canaries: r.Canaries}
		}
		if e.Health != nil {
			ej.Health = e.Health.toJSON()
		}
		ej.Stage = e.Stage.String()
		if ej.Env == e.Package.App {
			ej.Env = ""
		}
		if ej.OnFailure == PolicyRollback {
			ej.OnFailure = ""
		}
		if len(ej.Config) == 0 {
			ej.Config = nil
		}
		if ej.Env == "" && ej.Config == nil && ej.OnFailure == "" && ej.Restart == "" && ej.Rollout == nil && ej.Health == nil && ej.Stage == "" {
			out.Packages = append(out.Packages, ej.Package)
		} else {
			out.Packages = append(out.Packages, ej)
		}
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		panic(err) // only strings, maps of strings and ints: cannot fail
	}
	return append(b, '\n')
}

// MaskedValue replaces config values in a manifest shown to someone who
// may not see them (Masked).
const MaskedValue = "•••"

// Masked returns a copy of m with every config value replaced by
// MaskedValue: the keys stay, so everyone sees what is configured, but not
// the values, which often carry secrets. m is not modified.
func (m *Manifest) Masked() *Manifest {
	masked := m.Clone()
	for i := range masked.Packages {
		for k := range masked.Packages[i].Config {
			masked.Packages[i].Config[k] = MaskedValue
		}
	}
	return masked
}

// Clone returns a deep copy of m.
func (m *Manifest) Clone() *Manifest {
	c := &Manifest{Revision: m.Revision, Packages: slices.Clone(m.Packages)}
	for i := range c.Packages {
		if c.Packages[i].Config != nil {
			c.Packages[i].Config = clone(c.Packages[i].Config)
		}
		if h := c.Packages[i].Health; h != nil {
			ch := *h
			c.Packages[i].Health = &ch
		}
		if r := c.Packages[i].Rollout; r != nil {
			cr := *r
			cr.Canaries = slices.Clone(r.Canaries)
			c.Packages[i].Rollout = &cr
		}
	}
	return c
}

func clone(m map[string]string) map[string]string {
	c := make(map[string]string, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// Lookup returns the entry for env, if any.
func (m *Manifest) Lookup(env string) (Entry, bool) {
	for _, e := range m.Packages {
		if e.EnvName() == env {
			return e, true
		}
	}
	return Entry{}, false
}

// Apps returns the apps the manifest lists, in manifest order, each once.
func (m *Manifest) Apps() []string {
	var apps []string
	for _, e := range m.Packages {
		if !slices.Contains(apps, e.Package.App) {
			apps = append(apps, e.Package.App)
		}
	}
	return apps
}

// SetPackage points every entry of p's app at p, keeping each entry's env,
// config and policy, or appends a plain entry when the app has none. A
// plain deploy ends whatever rollout or stage the entry carried: every
// member takes p. It reports whether anything changed.
func (m *Manifest) SetPackage(p PackageName) bool {
	found, changed := false, false
	for i := range m.Packages {
		e := &m.Packages[i]
		if e.Package.App == p.App {
			found = true
			if e.Package.String() != p.String() || e.Rollout != nil || !e.Stage.IsZero() {
				e.Package, e.Rollout, e.Stage = p, nil, PackageName{}
				changed = true
			}
		}
	}
	if !found {
		m.Packages = append(m.Packages, Entry{Package: p})
		changed = true
	}
	return changed
}

// RemoveApp removes every entry of app and reports whether any existed.
func (m *Manifest) RemoveApp(app string) bool {
	n := len(m.Packages)
	m.Packages = slices.DeleteFunc(m.Packages, func(e Entry) bool { return e.Package.App == app })
	return len(m.Packages) != n
}
