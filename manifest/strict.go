package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// decodeStrict decodes one JSON value into v, refusing unknown fields,
// duplicate keys in any object and trailing data.
func decodeStrict(data []byte, v any) error {
	if err := checkDuplicateKeys(data); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing data after JSON value")
	}
	return nil
}

// checkDuplicateKeys reports the first key that appears twice in one JSON
// object of data, at any depth. encoding/json keeps the last of them
// silently, so {"revision":1,"revision":2} would otherwise mean whatever
// the last writer of a hand-made file happened to leave. Syntax errors are
// left for the decoder to report.
func checkDuplicateKeys(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	// One frame per open object or array; objects track their keys, and
	// whether the next string token is a key.
	type frame struct {
		keys     map[string]bool
		wantKey  bool
		isObject bool
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err != nil {
			return nil // io.EOF, or a syntax error the decoder reports
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if d, ok := tok.(json.Delim); ok {
			switch d {
			case '{':
				if top != nil && top.isObject {
					top.wantKey = true
				}
				stack = append(stack, &frame{keys: map[string]bool{}, wantKey: true, isObject: true})
			case '[':
				if top != nil && top.isObject {
					top.wantKey = true
				}
				stack = append(stack, &frame{})
			default: // '}' or ']'
				stack = stack[:len(stack)-1]
			}
			if len(stack) == 0 && (d == '}' || d == ']') {
				return nil
			}
			continue
		}
		if top == nil || !top.isObject {
			continue
		}
		if top.wantKey {
			k, _ := tok.(string)
			if top.keys[k] {
				return fmt.Errorf("duplicate key %q in a JSON object", k)
			}
			top.keys[k] = true
			top.wantKey = false
			continue
		}
		top.wantKey = true // a scalar value was read
	}
}
