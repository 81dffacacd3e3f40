package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
)

// Quantity is a Kubernetes quantity such as "500m", "16Gi" or 4. Stack files may
// write it as a string or a number.
type Quantity string

// IntOrPercent is a count ("1") or a percentage ("25%"). Stack files may write
// the count as a number.
type IntOrPercent string

// defaulter is implemented by list elements whose fields have defaults: a new
// element starts from them before the stack file's values are laid over it.
type defaulter interface{ setDefaults() }

// decoder lays JSON values over typed structs, collecting one FieldError per
// problem (wrong type, unknown key) with the full key path, instead of stopping
// at the first as encoding/json does.
type decoder struct {
	errs []error
	// written holds every key the stack file set, so validation can tell a
	// value written by the user from a default (a value that does nothing
	// deserves a warning only when someone wrote it).
	written map[string]bool
}

// decodeJSON parses text as JSON and decodes it into dst (a pointer), reporting
// problems under key.
func (d *decoder) decodeJSON(key, text string, dst any) {
	dec := json.NewDecoder(bytes.NewReader([]byte(text)))
	dec.UseNumber()
	var raw any
	if err := dec.Decode(&raw); err != nil {
		d.fail(key, text, "is not valid JSON or YAML: "+err.Error(), "")
		return
	}
	d.decode(key, raw, reflect.ValueOf(dst).Elem())
}

func (d *decoder) fail(key string, value any, rule, example string) {
	d.errs = append(d.errs, &FieldError{Key: key, Value: value, Rule: rule, Example: example})
}

func (d *decoder) decode(key string, raw any, dst reflect.Value) {
	if raw == nil {
		return // an explicit null keeps the default
	}
	if d.written == nil {
		d.written = map[string]bool{}
	}
	d.written[key] = true
	// Quantities and counts-or-percentages may be written as strings or numbers.
	if rule, ok := stringOrNumber[dst.Type()]; ok {
		switch v := raw.(type) {
		case string:
			dst.SetString(v)
		case json.Number:
			dst.SetString(v.String())
		default:
			d.fail(key, raw, rule[0], rule[1])
		}
		return
	}

	switch dst.Kind() {
	case reflect.String:
		s, ok := raw.(string)
		if !ok {
			d.fail(key, raw, "must be a string", "")
			return
		}
		dst.SetString(s)
	case reflect.Bool:
		b, ok := raw.(bool)
		if !ok {
			d.fail(key, raw, "must be true or false", "")
			return
		}
		dst.SetBool(b)
	case reflect.Int:
		n, ok := raw.(json.Number)
		if !ok {
			if str, isString := raw.(string); isString {
				if _, err := strconv.ParseInt(strings.TrimSpace(str), 10, 64); err == nil {
					// Quoted in YAML, the digits are a string.
					d.fail(key, raw, "must be a whole number, written without quotes: quoted, YAML reads it as a string (with `pulumi config set`, add `--type int`)", strings.TrimSpace(str))
					return
				}
			}
			d.fail(key, raw, "must be a whole number", "")
			return
		}
		i, err := strconv.ParseInt(n.String(), 10, 32)
		switch {
		case err == nil:
			dst.SetInt(i)
		case errors.Is(err, strconv.ErrRange) && strings.HasPrefix(n.String(), "-"):
			d.fail(key, raw, fmt.Sprintf("too small: Kubernetes stores it as a 32-bit integer, at least %d", math.MinInt32), "")
		case errors.Is(err, strconv.ErrRange):
			d.fail(key, raw, fmt.Sprintf("too large: Kubernetes stores it as a 32-bit integer, at most %d", math.MaxInt32), "")
		case integral(n):
			// Beyond 64 bits YAML itself reads the digits as a float, so
			// Pulumi hands over a rounded value: say why, not only what.
			d.fail(key, raw, fmt.Sprintf("too large: Kubernetes stores it as a 32-bit integer, at most %d (a number this long reaches the program as a rounded float)", math.MaxInt32), "")
		default:
			d.fail(key, raw, "must be a whole number", "")
		}
	case reflect.Slice:
		items, ok := raw.([]any)
		if !ok {
			d.fail(key, raw, "must be a list", "")
			return
		}
		out := reflect.MakeSlice(dst.Type(), len(items), len(items))
		for i, item := range items {
			el := out.Index(i)
			if def, ok := el.Addr().Interface().(defaulter); ok {
				def.setDefaults()
			}
			d.decode(fmt.Sprintf("%s[%d]", key, i), item, el)
		}
		dst.Set(out)
	case reflect.Map:
		m, ok := raw.(map[string]any)
		if !ok {
			d.fail(key, raw, "must be a map of strings", "")
			return
		}
		out := reflect.MakeMapWithSize(dst.Type(), len(m))
		for k, v := range m {
			el := reflect.New(dst.Type().Elem()).Elem()
			d.decode(key+"."+quoteKey(k), v, el)
			out.SetMapIndex(reflect.ValueOf(k), el)
		}
		dst.Set(out)
	case reflect.Struct:
		m, ok := raw.(map[string]any)
		if !ok {
			d.fail(key, raw, "must be an object", "")
			return
		}
		fields := jsonFields(dst.Type())
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if why, ok := retiredKeys[joinKey(key, k)]; ok {
				d.fail(joinKey(key, k), m[k], why, "")
				continue
			}
			idx, known := fields[k]
			if !known {
				d.fail(joinKey(key, k), k, "unknown key; valid keys are "+strings.Join(sortedKeys(fields), ", "), "")
				continue
			}
			d.decode(joinKey(key, k), m[k], dst.Field(idx))
		}
	default:
		panic(fmt.Sprintf("config: no decoder for %s", dst.Type())) // a programming error, not an input error
	}
}

// integral reports whether a number that is no int64 is still whole, as a
// float: 1e+29 is, 2.5 is not.
func integral(n json.Number) bool {
	f, err := n.Float64()
	return err == nil && f == math.Trunc(f) && !math.IsInf(f, 0)
}

// retiredKeys were keys once; each says why it is gone and what to write
// instead, so an old stack file gets more than "unknown key".
var retiredKeys = map[string]string{
	"pipeline.ingestion.ttlSecondsAfterFinished": "is no longer a key: the first run's Job is kept as the record of that run " +
		"(a TTL deleted it, and every refresh then saw it gone and planned the run again); remove the key. " +
		"Scheduled runs are still cleaned up after cron.ttlSecondsAfterFinished",
}

// stringOrNumber maps each such type to its rule and example.
var stringOrNumber = map[reflect.Type][2]string{
	reflect.TypeFor[Quantity]():     {"must be a quantity such as \"500m\" or \"16Gi\"", ""},
	reflect.TypeFor[IntOrPercent](): {"must be a count or a percentage", "1 or \"25%\""},
}

func jsonFields(t reflect.Type) map[string]int {
	fields := make(map[string]int, t.NumField())
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			fields[name] = i
		}
	}
	return fields
}

func sortedKeys(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func joinKey(parent, child string) string {
	if parent == "" {
		return child
	}
	return parent + "." + child
}

// quoteKey writes a map key so that a key with dots stays readable in a path.
func quoteKey(k string) string {
	if strings.ContainsAny(k, ". ") {
		return strconv.Quote(k)
	}
	return k
}
