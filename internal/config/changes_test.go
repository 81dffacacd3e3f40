package config

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// leafKeys lists every key path a stack file can set, from the config types.
func leafKeys(prefix string, t reflect.Type) []string {
	switch {
	case t == reflect.TypeFor[Quantity](), t == reflect.TypeFor[IntOrPercent]():
		return []string{prefix}
	case t.Kind() == reflect.Struct:
		var out []string
		for i := range t.NumField() {
			name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
			if name == "" || name == "-" {
				continue
			}
			out = append(out, leafKeys(joinKey(prefix, name), t.Field(i).Type)...)
		}
		return out
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Struct:
		return leafKeys(prefix+"[]", t.Elem())
	default:
		return []string{prefix}
	}
}

// A key without a class would be a change nobody thought through.
func TestEveryKeyHasAChangeClass(t *testing.T) {
	keys := append(leafKeys("", reflect.TypeFor[Config]()), SecretKeys...)
	require.Greater(t, len(keys), 100)
	for _, k := range keys {
		_, ok := ChangeOf(k)
		assert.True(t, ok, "config key %s has no change class: add it to config.Changes and the change table of docs/config.md", k)
	}
	for entry := range Changes {
		found := slices.ContainsFunc(keys, func(k string) bool {
			return k == entry || strings.HasPrefix(k, entry+".") || strings.HasPrefix(k, entry+"[]")
		})
		assert.True(t, found, "config.Changes names %s, which is not a key", entry)
	}
}

// The change table of docs/config.md says what config.Changes says, row for row.
func TestDocsChangeTableMatches(t *testing.T) {
	text, err := os.ReadFile(filepath.Join("..", "..", "docs", "config.md"))
	require.NoError(t, err)
	_, table, ok := strings.Cut(string(text), "| key | what a change does |")
	require.True(t, ok, "docs/config.md has the change table")
	rows := map[string]string{}
	for _, line := range strings.Split(table, "\n")[2:] {
		if !strings.HasPrefix(line, "| `") {
			break
		}
		cells := strings.Split(line, "|")
		key := strings.Trim(strings.TrimSpace(cells[1]), "`")
		class, _, _ := strings.Cut(strings.TrimSpace(cells[2]), ":")
		rows[key] = strings.Trim(class, "*")
	}
	for entry, class := range Changes {
		assert.Equal(t, string(class), rows[entry], "docs/config.md change table, row %s", entry)
	}
	assert.Len(t, rows, len(Changes), "one row of docs/config.md per entry")
}
