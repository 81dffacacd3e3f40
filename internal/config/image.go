package config

import (
	"fmt"
	"strings"

	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
)

// Image is a container image reference split into its parts.
type Image struct {
	// Repository is the fully qualified name, for example "docker.io/vllm/vllm-openai".
	Repository string
	// Tag, empty when the reference has none.
	Tag string
	// Digest such as "sha256:...", empty when the reference has none.
	Digest string
}

// Pinned reports whether the reference names one image for good: a digest, or
// a tag other than latest.
func (i Image) Pinned() bool {
	return i.Digest != "" || (i.Tag != "" && i.Tag != "latest")
}

// ParseImage parses an image reference with the container ecosystem's own
// parser (github.com/distribution/reference, the one containerd and the
// registries use): a digest must be a real digest, a tag a valid tag, the
// repository lower case.
func ParseImage(ref string) (Image, error) {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		// The grammar only says "invalid reference format"; the digest's own
		// parser says what is wrong with it.
		if _, d, ok := strings.Cut(ref, "@"); ok {
			if derr := digest.Digest(d).Validate(); derr != nil {
				return Image{}, fmt.Errorf("digest %q: %w (a digest is sha256: and 64 hex digits)", d, derr)
			}
		}
		return Image{}, err
	}
	img := Image{Repository: named.Name()}
	if tagged, ok := named.(reference.Tagged); ok {
		img.Tag = tagged.Tag()
	}
	if digested, ok := named.(reference.Digested); ok {
		img.Digest = digested.Digest().String()
	}
	return img, nil
}
