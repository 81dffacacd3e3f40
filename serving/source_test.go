package serving_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	batchv1 "k8s.io/api/batch/v1"

	"llm-platform/internal/config"
	"llm-platform/internal/stacktest"
	"llm-platform/serving"
)

func TestPinnedURIIsKServesForm(t *testing.T) {
	hub := serving.Source{Scheme: "hf", URI: "hf://Qwen/Qwen2.5-0.5B-Instruct", Repo: "Qwen/Qwen2.5-0.5B-Instruct", Revision: "7ae5576"}
	assert.Equal(t, "hf://Qwen/Qwen2.5-0.5B-Instruct:7ae5576", hub.PinnedURI(), "KServe reads a hub revision after a colon")
	s3 := serving.Source{Scheme: "s3", URI: "s3://models/llama/v3", Repo: "models/llama/v3", Revision: "2026-11-01"}
	assert.Equal(t, "s3://models/llama/v3", s3.PinnedURI(), "an s3 revision is only a label")
}

// Left out, the downloader is KServe's storage initializer, called with the
// pinned URI and the revision's directory.
func TestDefaultDownloaderIsKServesStorageInitializer(t *testing.T) {
	res := stacktest.Run(t, stacktest.Load(t, "quickstart"))
	var job batchv1.Job
	res.Decode(t, "Job", res.OnlyNamed(t, "Job", "fetch-qwen-0-5b-").Name(), &job)
	c := job.Spec.Template.Spec.Containers[0]
	assert.Equal(t, config.DefaultFetchImage, c.Image)
	assert.Equal(t, []string{config.KServeEntrypoint, "$(SOURCE_PINNED_URI)", "$(MODEL_DIR)"}, c.Args)
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	assert.Equal(t, "hf://Qwen/Qwen2.5-0.5B-Instruct:7ae557604adf67be50417f59c2c2f167def9a775", env["SOURCE_PINNED_URI"])
	assert.Equal(t, "/models/qwen-0-5b/7ae557604adf67be50417f59c2c2f167def9a775", env["MODEL_DIR"])
	assert.Equal(t, []string{"/bin/sh", "-c"}, c.Command[:2], "the wrapper writes the completion marker")
}
