package config

import (
	"encoding/json"
	"regexp"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"
)

// Many tools read a 0 or an empty value as "no limit" (an unset
// activeDeadlineSeconds, docker's --memory 0, a Helm chart's maxReplicas: 0),
// so a user who wants none writes one. This stack has no such value: every
// key that refuses a 0 says so at its own key, with what to write instead.

// noLimitHint is the sentence added to the rule of a refused value that the
// stack file wrote as 0 or empty: what leaving the key out does, or why the
// key has no unlimited form. When the key has a default, that default is the
// example. hint is "" for any other value or a key nobody wrote.
func (c *checker) noLimitHint(key string, value any) (hint, example string) {
	if !c.wrote(key) || !zeroOrEmpty(value) {
		return "", ""
	}
	not := formatValue(value) + ` is not "no limit" here`
	switch {
	case strings.Contains(key, ".limits."):
		return not + ": every container of the stack has a limit; leave the key out and it equals the request", ""
	case strings.HasPrefix(key, "namespace.quota."):
		return not + ": a ResourceQuota has no unlimited value; write the most the namespace may use", ""
	case strings.HasSuffix(key, "autoscaling.maxReplicas"):
		return not + ": an autoscaler needs an upper bound, which the quota must also hold", ""
	}
	if d, ok := defaultAt(key); ok {
		return not + "; leave the key out for the default, " + formatValue(d), formatValue(d)
	}
	return not + ": the key has no unlimited value", ""
}

// zeroOrEmpty reports whether v is a 0 or an empty value as the stack file
// wrote it: 0, "", or a quantity equal to zero ("0", "0Gi").
func zeroOrEmpty(v any) bool {
	switch v := v.(type) {
	case int:
		return v == 0
	case int64:
		return v == 0
	case json.Number:
		return v.String() == "0"
	case string:
		return isZeroQuantity(v)
	case Quantity:
		return isZeroQuantity(string(v))
	case IntOrPercent:
		return v == "" || v == "0" || v == "0%"
	}
	return false
}

func isZeroQuantity(s string) bool {
	if s == "" {
		return true
	}
	q, err := resource.ParseQuantity(s)
	return err == nil && q.IsZero()
}

var modelKey = regexp.MustCompile(`^serving\.models\[\d+\]\.`)

// defaultAt is the non-zero default of key, from Defaults() and a new
// model's defaults; false when the key has none (or one under a list other
// than serving.models).
func defaultAt(key string) (any, bool) {
	var root any
	if loc := modelKey.FindStringIndex(key); loc != nil {
		var m Model
		m.setDefaults()
		root, key = m, key[loc[1]:]
	} else {
		root = Defaults()
	}
	if strings.Contains(key, "[") {
		return nil, false
	}
	b, err := json.Marshal(root)
	if err != nil {
		return nil, false
	}
	var node any
	if err := json.Unmarshal(b, &node); err != nil {
		return nil, false
	}
	for _, part := range strings.Split(key, ".") {
		obj, ok := node.(map[string]any)
		if !ok {
			return nil, false
		}
		node = obj[part]
	}
	switch d := node.(type) {
	case float64:
		if d != 0 {
			return int64(d), true
		}
	case string:
		if !isZeroQuantity(d) {
			return d, true
		}
	}
	return nil, false
}
