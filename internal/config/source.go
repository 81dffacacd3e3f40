package config

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"
)

// ModelPathVariable is what a model server's args name the local weights by
// when the model has a source: Kubernetes expands it from the environment.
const ModelPathVariable = "$(MODEL_PATH)"

var (
	hubRepository = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$`)
	hubCommit     = regexp.MustCompile(`^[0-9a-f]{40}$`)
	shortHex      = regexp.MustCompile(`^[0-9a-f]{7,39}$`)
	// revisionLabel is what may name a revision: it becomes part of a
	// directory name and of the fetch run's environment.
	revisionLabel = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)
)

// source checks where a model's weights come from and how they are fetched.
func (c *checker) source(key string, m Model, prod bool) {
	s := m.Source
	k := key + ".source"
	if s.URI == "" {
		if c.anyWritten(k + ".") {
			c.fail(k+".uri", s.URI, "required when source is set: hf://<org>/<name>, s3://<bucket>/<prefix>, claim://<claim> or oci://<image>", `"hf://meta-llama/Meta-Llama-3-8B-Instruct"`)
			return
		}
		c.warn(k, "not set: the server downloads its weights itself at every start, needs egress to the hub, and the model-load budget must cover the download; set source to fetch them once, pinned, before the server starts")
		return
	}
	switch s.Scheme() {
	case SourceHub:
		if !hubRepository.MatchString(s.Path()) {
			c.fail(k+".uri", s.URI, "must be hf://<org>/<name>, a Hugging Face Hub repository", `"hf://meta-llama/Meta-Llama-3-8B-Instruct"`)
		}
		switch {
		case s.Revision == "":
			c.fail(k+".revision", s.Revision, "required for hf: the commit to fetch; without one the weights could change under a running stack", `"<40-hex commit from the repository's history>"`)
		case looksLikeShortCommit(s.Revision):
			c.fail(k+".revision", s.Revision, "looks like a short commit: write all 40 hex digits (`git rev-parse "+s.Revision+"` in a clone, or the commit's page on the hub); a short one could as well be a branch or tag name, and is pinned by nothing", `"<40-hex commit from the repository's history>"`)
		case prod && !hubCommit.MatchString(s.Revision):
			c.fail(k+".revision", s.Revision, "prod requires a commit (40 lower-case hex digits): a branch or tag can move under a running stack", `"<40-hex commit from the repository's history>"`)
		case !hubCommit.MatchString(s.Revision):
			c.warn(k+".revision", "%s is a branch or tag: it is fetched once and not again when it moves; pin a commit", s.Revision)
		}
	case SourceS3:
		bucket, _, _ := strings.Cut(s.Path(), "/")
		if errs := validation.IsDNS1123Subdomain(bucket); len(errs) > 0 || len(bucket) < 3 {
			c.fail(k+".uri", s.URI, "must be s3://<bucket>/<prefix> with a valid bucket name", `"s3://models/llama-3-8b"`)
		}
		if s.Revision == "" {
			c.fail(k+".revision", s.Revision, "required for s3: a label of the version under the prefix (a new label is a new fetch)", `"2026-11-01"`)
		}
	case SourceClaim:
		name, _, _ := strings.Cut(s.Path(), "/")
		if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
			c.fail(k+".uri", s.URI, "must be claim://<claim>[/<path>], naming a claim of the namespace", `"claim://llama-weights"`)
		}
		c.unusedBySource(k, "claim")
		return
	case SourceImage:
		c.image(k+".uri", s.Path(), prod)
		c.unusedBySource(k, "oci")
		c.warn(k+".uri", "oci: needs image volumes (Kubernetes 1.35, or 1.33 and 1.34 with the ImageVolume feature gate) and a container runtime that mounts them (containerd 2.1, CRI-O 1.31), which a preview cannot check")
		return
	default:
		c.fail(k+".uri", s.URI, "must start with hf://, s3://, claim:// or oci://", `"hf://meta-llama/Meta-Llama-3-8B-Instruct"`)
		return
	}
	if s.Revision != "" && !revisionLabel.MatchString(s.Revision) {
		c.fail(k+".revision", s.Revision, "must be letters, digits, '.', '_' and '-', at most 128 characters", `"2026-11-01"`)
	}
	if s.Endpoint != "" && !strings.HasPrefix(s.Endpoint, "https://") && !strings.HasPrefix(s.Endpoint, "http://") {
		c.fail(k+".endpoint", s.Endpoint, "must be an http(s) URL", `"https://hub-mirror.example.com"`)
	}
	f := s.Fetch
	c.image(k+".fetch.image", f.Image, prod)
	if len(f.Args) == 0 {
		c.fail(k+".fetch.args", f.Args, "required: the downloader's command and arguments", fmt.Sprintf("%q", DefaultFetchArgs[SourceHub]))
	}
	c.atLeast(k+".fetch.budgetSeconds", f.BudgetSeconds, 60)
	c.atMostDay(k+".fetch.budgetSeconds", f.BudgetSeconds)
	c.atLeast(k+".fetch.backoffLimit", f.BackoffLimit, 0)
	c.atMost(k+".fetch.backoffLimit", f.BackoffLimit, 100)
	c.resources(k+".fetch.resources", f.Resources)
	if m.ModelCache.AccessMode == AccessReadOnlyMany {
		c.fail(key+".modelCache.accessMode", m.ModelCache.AccessMode, "must be writable: the fetch run writes the weights into the model cache", `"ReadWriteMany"`)
	}
	if s.Size != "" {
		size, ok := c.bytes(k+".size", s.Size, `"16Gi"`)
		cache, err := resource.ParseQuantity(string(m.ModelCache.Size))
		if ok && err == nil && cache.Cmp(size) < 0 {
			c.fail(key+".modelCache.size", m.ModelCache.Size, fmt.Sprintf("must hold the weights: the source is %s", s.Size), fmt.Sprintf("%q", s.Size))
		} else if ok && err == nil {
			twice := size.DeepCopy()
			twice.Add(size)
			if cache.Cmp(twice) < 0 {
				c.warn(key+".modelCache.size", "%s holds one copy of the %s weights: a revision change downloads beside the revision the running pods read, and fails for want of space", m.ModelCache.Size, s.Size)
			}
		}
	}
}

// unusedBySource warns about the fetch keys of a source nothing is fetched for.
func (c *checker) unusedBySource(k, scheme string) {
	for _, unused := range []string{"revision", "size", "endpoint", "fetch"} {
		if c.anyWritten(k + "." + unused) {
			c.warn(k+"."+unused, "has no effect with a %s source: nothing is fetched", scheme)
		}
	}
}

// modelPathInArgs refuses a sourced model whose server would not read the
// local weights (offline, it cannot resolve a hub name), and a server that
// names local weights no source delivers.
func (c *checker) modelPathInArgs(key string, m Model) {
	named := slices.ContainsFunc(m.Args, func(a string) bool { return strings.Contains(a, ModelPathVariable) })
	if m.Source.URI == "" && named {
		c.fail(key+".args", m.Args, ModelPathVariable+" is set only when the model has a source: without one the server would get the text itself", `["--model", "meta-llama/Meta-Llama-3-8B-Instruct"]`)
	}
	if m.Source.URI == "" || named {
		return
	}
	c.fail(key+".args", m.Args, "must name the local weights as "+ModelPathVariable+" when source is set: the server runs offline (HF_HUB_OFFLINE=1) and reads only what the fetch run put in the cache",
		`["--model", "$(MODEL_PATH)", "--served-model-name", "llama-3-8b"]`)
}

// anyWritten reports whether the stack file wrote key or a key below it.
func (c *checker) anyWritten(key string) bool {
	for k := range c.written {
		if k == key || strings.HasPrefix(k, key) {
			return true
		}
	}
	return false
}

// looksLikeShortCommit reports a revision of 7 to 39 hex digits mixing
// letters and digits, as `git log --oneline` prints commits.
func looksLikeShortCommit(rev string) bool {
	return shortHex.MatchString(rev) && strings.ContainsAny(rev, "0123456789") && strings.ContainsAny(rev, "abcdef")
}
