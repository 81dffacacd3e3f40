package stacktest

import (
	"testing"

	"llm-platform/internal/mock"
)

// Resource returns the recorded Pulumi resource of type and logical name.
func (r *Result) Resource(t testing.TB, typ, name string) mock.Resource {
	t.Helper()
	for _, res := range r.Resources() {
		if res.Type == typ && res.Name == name {
			return res
		}
	}
	t.Fatalf("no resource %s %s", typ, name)
	return mock.Resource{}
}
