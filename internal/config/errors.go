package config

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
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
	if s, ok := e.Value.(string); ok {
		if odd := oddCharacter(s); odd != "" {
			fmt.Fprintf(&b, " (%s)", odd)
		}
	}
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

// oddCharacter names the first character of s that a reader cannot see or
// tell from an ASCII one: an invisible one (a zero-width space, a BOM, a
// control character) or a non-ASCII look-alike (a Cyrillic а, a non-breaking
// space, an en dash), with its position, so a name that looks right but is
// refused says why. "" when s is plain ASCII.
func oddCharacter(s string) string {
	pos := 0
	for _, r := range s {
		pos++
		switch {
		case r == utf8.RuneError:
			return fmt.Sprintf("character %d is not valid UTF-8", pos)
		case unicode.Is(unicode.Cf, r) || unicode.IsControl(r):
			return fmt.Sprintf("character %d is U+%04X, an invisible character", pos, r)
		case unicode.IsSpace(r) && r > unicode.MaxASCII:
			return fmt.Sprintf("character %d is U+%04X, a space that is not ASCII", pos, r)
		case r > unicode.MaxASCII:
			return fmt.Sprintf("character %d is %q (U+%04X), not ASCII: a look-alike of a Latin letter or sign?", pos, r, r)
		}
	}
	return ""
}
