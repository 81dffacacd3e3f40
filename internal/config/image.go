package config

import (
	"errors"
	"strings"
)

// Image is a container image reference split into its parts.
type Image struct {
	// Repository is everything before the tag or digest.
	Repository string
	// Tag, empty when the reference has none.
	Tag string
	// Digest such as "sha256:...", empty when the reference has none.
	Digest string
}

// ParseImage splits an image reference. It accepts what container runtimes
// accept in practice: an optional registry host (with a port), a path, then
// ":tag" and/or "@sha256:<hex>".
func ParseImage(ref string) (Image, error) {
	if strings.ContainsAny(ref, " \t\n") {
		return Image{}, errors.New("must not contain white space")
	}
	var img Image
	rest := ref
	if before, digest, ok := strings.Cut(rest, "@"); ok {
		algo, hex, ok := strings.Cut(digest, ":")
		if !ok || algo == "" || len(hex) < 32 {
			return Image{}, errors.New("digest must look like sha256:<hex>")
		}
		img.Digest, rest = digest, before
	}
	// A colon after the last slash starts the tag; one before it is a registry port.
	if i := strings.LastIndex(rest, ":"); i > strings.LastIndex(rest, "/") {
		img.Tag, rest = rest[i+1:], rest[:i]
		if img.Tag == "" {
			return Image{}, errors.New("tag must not be empty")
		}
	}
	if rest == "" || strings.HasSuffix(rest, "/") || strings.HasPrefix(rest, "/") {
		return Image{}, errors.New("repository must not be empty")
	}
	if rest != strings.ToLower(rest) {
		return Image{}, errors.New("repository must be lower case")
	}
	img.Repository = rest
	return img, nil
}
