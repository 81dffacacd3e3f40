package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/distribution/reference"
	"github.com/stretchr/testify/assert"

	"llm-platform/internal/config"
	"llm-platform/internal/stacktest"
)

// placeholderRegistries are where the example stack files point for images
// only their user can provide: they do not exist.
var placeholderRegistries = []string{"ghcr.io/llm-platform/", "llm-platform.local/"}

// usersOwn are the keys whose images are the user's own workloads: the only
// ones that may name a placeholder.
var usersOwn = map[string]bool{"pipeline.ingestion.image": true, "pipeline.transformation.image": true, "checkpoint.image": true}

// images are a stack's image references by key, its defaults applied.
func images(cfg config.Config) map[string]string {
	out := map[string]string{
		"pipeline.ingestion.image":      cfg.Pipeline.Ingestion.Image,
		"pipeline.transformation.image": cfg.Pipeline.Transformation.Image,
		"checkpoint.image":              cfg.Checkpoint.Image,
	}
	pooled := false
	for i, m := range cfg.Serving.Models {
		out[fmt.Sprintf("serving.models[%d].image", i)] = m.Image
		if m.Source.Fetched() {
			out[fmt.Sprintf("serving.models[%d].source.fetch.image", i)] = m.Source.Fetch.Image
		}
		pooled = pooled || m.Routing == config.RoutingInferencePool
	}
	if pooled {
		out["serving.routing.picker.image"] = cfg.Serving.Routing.Picker.Image
	}
	return out
}

// Every image of the shipped stack files and of the defaults is a valid
// reference, pinned to a tag other than latest or a digest, and only the
// user's own workloads point at a registry that does not exist.
func TestShippedImagesExist(t *testing.T) {
	check := func(t *testing.T, key, image string) {
		named, err := reference.ParseNormalizedNamed(image)
		if !assert.NoError(t, err, "%s: %q", key, image) {
			return
		}
		tagged, isTagged := named.(reference.Tagged)
		_, isDigested := named.(reference.Digested)
		assert.True(t, isDigested || (isTagged && tagged.Tag() != "latest"), "%s: %q is not pinned", key, image)
		if usersOwn[key] {
			return
		}
		for _, p := range placeholderRegistries {
			assert.False(t, strings.HasPrefix(named.String(), p), "%s: %q is a placeholder, but the platform runs it", key, image)
		}
	}
	for _, s := range stacktest.Stacks() {
		t.Run(s, func(t *testing.T) {
			for key, image := range images(stacktest.Load(t, s).Config(t)) {
				check(t, key, image)
			}
		})
	}
	t.Run("defaults", func(t *testing.T) {
		check(t, "source.fetch.image", config.DefaultFetchImage)
		check(t, "serving.routing.picker.image", config.DefaultPickerImage)
	})
	t.Run("the quickstart names no placeholder at all", func(t *testing.T) {
		for key, image := range images(stacktest.Load(t, "quickstart").Config(t)) {
			for _, p := range placeholderRegistries {
				assert.False(t, strings.HasPrefix(image, p), "%s: %q", key, image)
			}
		}
	})
}
