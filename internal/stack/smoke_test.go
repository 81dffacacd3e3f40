package stack

import (
	"testing"

	"llm-platform/internal/mock"
	"llm-platform/internal/stackfile"
)

func TestSmoke(t *testing.T) {
	for _, name := range []string{"dev", "prod"} {
		sf, err := stackfile.Load("../..", name)
		if err != nil {
			t.Fatal(err)
		}
		rec, err := mock.Run(Program, name, sf.Config, sf.SecretKeys)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range rec.Objects() {
			t.Logf("%s %s/%s", o.Kind(), o.Namespace(), o.Name())
		}
	}
}
