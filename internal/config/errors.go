package config

import (
	"encoding/json"
	"fmt"
	"strings"
)

// FieldError is one problem with one configuration value. Its message has the
// form `llm-platform:<key>: <value> is invalid: <rule>; for example <example>`.
type FieldError struct {
	// Key is the path below the project, for example "serving.models[0].gpus".
	Key string
	// Value is the offending value as the stack file gave it.
	Value any
	// Rule says what a valid value looks like.
	Rule string
	// Example is a valid value, when one helps.
	Example string
}

func (e *FieldError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s:%s: %s is invalid: %s", Project, e.Key, formatValue(e.Value), e.Rule)
	if e.Example != "" {
		fmt.Fprintf(&b, "; for example %s", e.Example)
	}
	return b.String()
}

func formatValue(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case string:
		return fmt.Sprintf("%q", v)
	case Quantity:
		return fmt.Sprintf("%q", string(v))
	case IntOrPercent:
		return fmt.Sprintf("%q", string(v))
	case json.Number:
		return v.String()
	case int, int64, bool:
		return fmt.Sprint(v)
	default:
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Sprint(v)
		}
		return string(b)
	}
}
