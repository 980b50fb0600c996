package manifest

import (
	"encoding/json"
	"fmt"
	"time"
)

// AuditRecord is one change to one server's manifest, stored under
// audit/{server}/, or one change to the push config (Server empty, Config
// set), stored under config/audit/.
type AuditRecord struct {
	Time   time.Time `json:"time"`
	User   string    `json:"user"`
	Server string    `json:"server"`
	// Group is set, instead of Server, for a change of a group's manifest.
	Group  string `json:"group,omitempty"`
	Action string `json:"action"` // e.g. "set hello", "remove api", "put manifest"
	// Before and After are the manifests' package lists as the change found
	// and left them (nil when the manifest did not exist).
	Before *Manifest `json:"-"`
	After  *Manifest `json:"-"`
	// Config marks a record of a push config change; ConfigBefore and
	// ConfigAfter are then the configs (ConfigBefore nil when there was
	// none).
	Config       bool        `json:"-"`
	ConfigBefore *PushConfig `json:"-"`
	ConfigAfter  *PushConfig `json:"-"`
}

// Target returns the manifest the record is about: the group's when Group
// is set, else the server's.
func (r *AuditRecord) Target() Target {
	if r.Group != "" {
		return Group(r.Group)
	}
	return Server(r.Server)
}

type auditJSON struct {
	Time         time.Time       `json:"time"`
	User         string          `json:"user"`
	Server       string          `json:"server,omitempty"`
	Group        string          `json:"group,omitempty"`
	Action       string          `json:"action"`
	Before       json.RawMessage `json:"before"`
	After        json.RawMessage `json:"after"`
	Config       bool            `json:"config,omitempty"`
	ConfigBefore json.RawMessage `json:"config_before,omitempty"`
	ConfigAfter  json.RawMessage `json:"config_after,omitempty"`
}

// Marshal encodes the record as one line of JSON, manifests and configs in
// canonical form.
func (r *AuditRecord) Marshal() []byte {
	a := auditJSON{Time: r.Time.UTC(), User: r.User, Server: r.Server, Group: r.Group, Action: r.Action, Before: []byte("null"), After: []byte("null"), Config: r.Config}
	if r.Before != nil {
		a.Before = r.Before.Marshal()
	}
	if r.After != nil {
		a.After = r.After.Marshal()
	}
	if r.ConfigBefore != nil {
		a.ConfigBefore = r.ConfigBefore.Marshal()
	}
	if r.ConfigAfter != nil {
		a.ConfigAfter = r.ConfigAfter.Marshal()
	}
	b, err := json.Marshal(a)
	if err != nil {
		panic(err)
	}
	return append(b, '\n')
}

// ParseAuditRecord decodes a record written by Marshal.
func ParseAuditRecord(data []byte) (*AuditRecord, error) {
	var a auditJSON
	if err := decodeStrict(data, &a); err != nil {
		return nil, fmt.Errorf("invalid audit record: %w", err)
	}
	r := &AuditRecord{Time: a.Time, User: a.User, Server: a.Server, Group: a.Group, Action: a.Action, Config: a.Config}
	for _, x := range []struct {
		raw json.RawMessage
		dst **Manifest
	}{{a.Before, &r.Before}, {a.After, &r.After}} {
		if len(x.raw) == 0 || string(x.raw) == "null" {
			continue
		}
		m, err := Parse(x.raw)
		if err != nil {
			return nil, fmt.Errorf("invalid audit record: %w", err)
		}
		*x.dst = m
	}
	for _, x := range []struct {
		raw json.RawMessage
		dst **PushConfig
	}{{a.ConfigBefore, &r.ConfigBefore}, {a.ConfigAfter, &r.ConfigAfter}} {
		if len(x.raw) == 0 || string(x.raw) == "null" {
			continue
		}
		c, err := ParsePushConfig(x.raw)
		if err != nil {
			return nil, fmt.Errorf("invalid audit record: %w", err)
		}
		*x.dst = c
	}
	return r, nil
}
