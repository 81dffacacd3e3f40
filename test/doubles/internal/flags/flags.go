// Package flags parses a double's command line leniently, as the real
// programs' command lines are long (vLLM has hundreds of flags) and the
// doubles read only a few: unknown flags are skipped, not refused.
package flags

import (
	"fmt"
	"strconv"
	"strings"
)

// Parsed is a command line split into flags and positional arguments.
type Parsed struct {
	// Positional are the arguments that are neither a flag nor a flag's
	// value, in order.
	Positional []string
	values     map[string]string
}

// Parse splits args. A flag is "--name value", "--name=value" or, for the
// names in boolean, a bare "--name"; one dash works as two, and "_" in a
// name as "-". A flag not in boolean takes the next argument as its value
// unless that argument starts with "-"; "--" ends the flags. When a flag is
// repeated the last value wins.
func Parse(args []string, boolean ...string) Parsed {
	isBool := map[string]bool{}
	for _, b := range boolean {
		isBool[normalize(b)] = true
	}
	p := Parsed{values: map[string]string{}}
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if arg == "--" {
			p.Positional = append(p.Positional, args[i+1:]...)
			break
		}
		if len(arg) < 2 || arg[0] != '-' {
			p.Positional = append(p.Positional, arg)
			continue
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(arg, "-"), "=")
		name = normalize(name)
		if !hasValue && !isBool[name] && i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
			value, hasValue = args[i+1], true
			i++
		}
		if !hasValue && isBool[name] {
			value = "true"
		}
		p.values[name] = value
	}
	return p
}

// normalize is a flag's name without dashes, with "_" as "-".
func normalize(name string) string {
	return strings.ReplaceAll(strings.TrimLeft(name, "-"), "_", "-")
}

// Has says the flag was given.
func (p Parsed) Has(name string) bool {
	_, ok := p.values[normalize(name)]
	return ok
}

// String is the flag's value, or def when it was not given.
func (p Parsed) String(name, def string) string {
	if v, ok := p.values[normalize(name)]; ok {
		return v
	}
	return def
}

// Int is the flag's value as an integer, or def when it was not given.
func (p Parsed) Int(name string, def int) (int, error) {
	v, ok := p.values[normalize(name)]
	if !ok {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("--%s: %q is not an integer", normalize(name), v)
	}
	return n, nil
}

// Float is the flag's value as a number, or def when it was not given.
func (p Parsed) Float(name string, def float64) (float64, error) {
	v, ok := p.values[normalize(name)]
	if !ok {
		return def, nil
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return 0, fmt.Errorf("--%s: %q is not a number", normalize(name), v)
	}
	return f, nil
}
