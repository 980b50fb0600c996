package pkginstall

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/google/renameio/v2"
	"github.com/pushpull/pushpull/manifest"
)

// stateFile is root/state.json.
type stateFile struct {
	Version int                  `json:"version"`
	Envs    map[string]*envState `json:"envs"`
}

// envState is what the engine records about one env. current on disk is the
// truth about what serves; Serving mirrors it.
type envState struct {
	// Serving is the package current points at, "" for none.
	Serving string `json:"serving,omitempty"`
	// Healthy is true when Serving's restart scripts last completed with
	// Config and Restart.
	Healthy bool `json:"healthy"`
	// Config and Restart are the entry's Serving was deployed with. A
	// restart changes them only once the restart scripts complete with
	// the new ones, so during a restart and after a failed one they are
	// what served last, which the rollback policy returns to.
	Config  map[string]string `json:"config,omitempty"`
	Restart string            `json:"restart,omitempty"`
	// Previous is the package that served before Serving, the target of
	// the rollback policy, with the config it served with.
	Previous        string            `json:"previous,omitempty"`
	PreviousConfig  map[string]string `json:"previous_config,omitempty"`
	PreviousRestart string            `json:"previous_restart,omitempty"`

	// The last or current attempt.
	Action   manifest.Action `json:"action,omitempty"`
	Target   string          `json:"target,omitempty"`
	State    manifest.State  `json:"state"`
	Step     manifest.Step   `json:"step,omitempty"`
	DeployID string          `json:"deploy_id,omitempty"`
	Error    string          `json:"error,omitempty"`

	Since   time.Time `json:"since"` // first install, orders Installed
	Updated time.Time `json:"updated"`

	// Builds describes the builds under builds/, by id.
	Builds map[string]buildRecord `json:"builds,omitempty"`
	// Staged is the package Stage last put under builds/ for a later
	// switch; it is kept like the serving build.
	Staged string `json:"staged,omitempty"`
	// Recent are the outcomes of the env's last finished actions, newest
	// first (manifest.Remember).
	Recent []manifest.Outcome `json:"recent,omitempty"`
}

// remember records how the attempt res describes ended, for Installed.
func (es *envState) remember(p string, res *Result) {
	o := manifest.Outcome{Package: p, Action: res.Action, State: res.State, DeployID: res.DeployID, Time: time.Now().UTC()}
	if res.Failed() {
		o.Step, o.Error, o.ExitCode, o.Output = res.Step, res.Err.Error(), res.ExitCode, manifest.Head(res.Output)
	}
	es.Recent = manifest.Remember(es.Recent, o)
}

// buildRecord describes one build on disk, for BUILD_* without the bucket.
type buildRecord struct {
	Package   string    `json:"package"`
	Commit    string    `json:"commit,omitempty"`
	Branch    string    `json:"branch,omitempty"`
	Repo      string    `json:"repo,omitempty"`
	URL       string    `json:"url,omitempty"`
	Installed time.Time `json:"installed"`
	// Used is when the build last became current.
	Used time.Time `json:"used"`
	// Deb is the Debian package name of a .deb build, which dpkg -r
	// removes.
	Deb string `json:"deb,omitempty"`
}

// touch records that build id becomes current now.
func (es *envState) touch(id string) {
	rec := es.Builds[id]
	rec.Used = time.Now().UTC()
	es.Builds[id] = rec
}

const stateVersion = 1

func (e *Engine) statePath() string { return filepath.Join(e.root, "state.json") }

// load reads state.json and reconciles it with the disk: Serving follows
// current, build records follow builds/. An unreadable state file is set
// aside (on a writable engine) and rebuilt from the disk.
func (e *Engine) load() error {
	st := &stateFile{Version: stateVersion, Envs: map[string]*envState{}}
	data, err := os.ReadFile(e.statePath())
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return fmt.Errorf("pkginstall: read state: %w", err)
	default:
		if jerr := json.Unmarshal(data, st); jerr != nil || st.Version != stateVersion {
			e.log.Error("state file unusable; rebuilding it from the disk", "path", e.statePath(), "err", jerr, "version", st.Version)
			if !e.readOnly {
				os.Rename(e.statePath(), e.statePath()+".bad")
			}
			st = &stateFile{Version: stateVersion, Envs: map[string]*envState{}}
		}
		if st.Envs == nil {
			st.Envs = map[string]*envState{}
		}
	}
	envs, err := e.envNames()
	if err != nil {
		return err
	}
	for _, env := range envs {
		if st.Envs[env] == nil {
			st.Envs[env] = &envState{State: manifest.StateUnknown}
		}
	}
	for env, es := range st.Envs {
		if manifest.CheckName("env", env) != nil {
			delete(st.Envs, env)
			continue
		}
		if es.Builds == nil {
			es.Builds = map[string]buildRecord{}
		}
		for id := range es.Builds {
			if !e.kept(env, id) {
				delete(es.Builds, id)
			}
		}
		if ents, err := os.ReadDir(e.buildsDir(env)); err == nil {
			for _, de := range ents {
				id := de.Name()
				if _, ok := es.Builds[id]; ok || strings.HasPrefix(id, ".") || !de.IsDir() {
					continue
				}
				// A build renamed in before its record was written: its
				// name is recoverable from the id when it parses.
				es.Builds[id] = buildRecord{Package: guessPackage(env, id, es)}
			}
		}
		cur := e.currentID(env)
		switch {
		case cur == "":
			if es.Serving != "" {
				es.Serving, es.Healthy = "", false
			}
		case !e.kept(env, cur):
			// Cannot happen with the engine's own writes; never leave a
			// dangling current.
			e.log.Error("current names a missing build; removing it", "env", env, "build", cur)
			if !e.readOnly {
				os.Remove(e.currentLink(env))
			}
			es.Serving, es.Healthy = "", false
		case es.Serving != "" && packageID(es.Serving) == cur:
			// The state follows current.
		case es.Previous != "" && packageID(es.Previous) == cur:
			// A switch of current from Previous to Serving was recorded
			// but a crash kept it from being made (a deploy's switch to
			// the new build, or the rollback policy's back to the old
			// one). Undo the record rather than forget either build: the
			// rollback policy needs the one before, and each keeps the
			// config it was rendered with.
			es.Serving, es.Previous = es.Previous, es.Serving
			es.Config, es.PreviousConfig = es.PreviousConfig, es.Config
			es.Restart, es.PreviousRestart = es.PreviousRestart, es.Restart
			es.Healthy = false
		default:
			es.Serving, es.Healthy = es.Builds[cur].Package, false
		}
		if es.State == manifest.StateDeploying {
			// A crash mid-attempt: the next Apply redoes it.
			es.State, es.Error = manifest.StateFailed, "interrupted (pulld stopped or crashed during "+string(es.Step)+")"
		}
	}
	e.state = st
	return nil
}

// guessPackage returns the package name of build id from what is known.
func guessPackage(env, id string, es *envState) string {
	for _, p := range []string{es.Target, es.Serving, es.Previous} {
		if p != "" && packageID(p) == id {
			return p
		}
	}
	app, _, _ := strings.Cut(id, "-")
	for _, f := range manifest.Formats() {
		if p, err := manifest.ParsePackageName(app + "/" + id + "." + string(f)); err == nil {
			return p.String()
		}
	}
	return ""
}

// packageID returns the build id of a package name string, "" when it does
// not parse.
func packageID(pkg string) string {
	p, err := manifest.ParsePackageName(pkg)
	if err != nil {
		return ""
	}
	return p.ID()
}

// save writes state.json atomically.
func (e *Engine) save() error {
	if e.readOnly {
		return nil
	}
	data, err := json.MarshalIndent(e.state, "", "  ")
	if err != nil {
		return fmt.Errorf("pkginstall: encode state: %w", err)
	}
	// The temporary file goes beside state.json: renameio would otherwise
	// probe os.TempDir on every save to see whether it shares the root's
	// file system, several times per deploy.
	if err := renameio.WriteFile(e.statePath(), append(data, '\n'), privateFile, renameio.WithTempDir(e.root)); err != nil {
		return fmt.Errorf("pkginstall: write state: %w", err)
	}
	wrote("state.json")
	return nil
}

// env returns the state of env, creating it.
func (e *Engine) env(env string) *envState {
	es := e.state.Envs[env]
	if es == nil {
		es = &envState{State: manifest.StateUnknown, Builds: map[string]buildRecord{}}
		e.state.Envs[env] = es
	}
	return es
}

// Installed is one env with a build in service.
type Installed struct {
	Env string
	// Package is the package current points at.
	Package manifest.PackageName
	// State and Step are as last recorded.
	State manifest.State
	Step  manifest.Step
	// Staged is the package staged for a later switch (Stage), the zero
	// PackageName for none.
	Staged manifest.PackageName
	// Since is when the env was first installed.
	Since time.Time
	// Updated is when its state last changed, and DeployID the attempt
	// that changed it last.
	Updated  time.Time
	DeployID string
	// Recent are the outcomes of the env's last finished actions, newest
	// first, as manifest.EnvStatus.Recent reports them.
	Recent []manifest.Outcome
}

// started calls Config.Started, if set.
func (e *Engine) started(env string, a manifest.Action) {
	if e.cfg.Started != nil {
		e.cfg.Started(env, a)
	}
}

// serving is the package current points at, parsed; the zero PackageName
// for none. state.json holds only names pkginstall wrote from valid
// entries, so a name that does not parse counts as none.
func (es *envState) serving() manifest.PackageName {
	p, _ := manifest.ParsePackageName(es.Serving)
	return p
}

// staged is Staged, parsed, while its build is kept.
func (es *envState) staged() manifest.PackageName {
	p, _ := manifest.ParsePackageName(es.Staged)
	return p
}

// Installed lists the envs whose current names a build, oldest install
// first (then by name).
func (e *Engine) Installed() ([]Installed, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []Installed
	for env, es := range e.state.Envs {
		if e.currentID(env) == "" {
			continue
		}
		out = append(out, Installed{Env: env, Package: es.serving(), Staged: es.staged(), State: es.State, Step: es.Step, Since: es.Since, Updated: es.Updated, DeployID: es.DeployID, Recent: slices.Clone(es.Recent)})
	}
	slices.SortFunc(out, func(a, b Installed) int {
		if c := a.Since.Compare(b.Since); c != 0 {
			return c
		}
		return strings.Compare(a.Env, b.Env)
	})
	return out, nil
}
