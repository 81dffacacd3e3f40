package images

import (
	"archive/tar"
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Options say where and for what the images are built.
type Options struct {
	// Out is the directory the tarballs are written to (created if missing).
	Out string
	// Arch is the GOARCH of the binaries and the images' architecture.
	Arch string
	// Busybox is the static busybox copied into images with a shell
	// (default BusyboxPath).
	Busybox string
	// Log receives one line per image (default os.Stdout).
	Log io.Writer
}

// Build compiles the doubles the images run, once each, and writes one
// tarball per image into opts.Out; a tarball that already holds the same
// image is left as it is. It returns the tarballs' paths.
func Build(ctx context.Context, opts Options, images []Image) ([]string, error) {
	if opts.Log == nil {
		opts.Log = os.Stdout
	}
	if opts.Busybox == "" {
		opts.Busybox = BusyboxPath
	}
	var busybox []byte
	if slices.ContainsFunc(images, func(im Image) bool { return im.Shell }) {
		var err error
		if busybox, err = LoadBusybox(opts.Busybox); err != nil {
			return nil, err
		}
	}
	tmp, err := os.MkdirTemp("", "llm-platform-doubles-")
	if err != nil {
		return nil, fmt.Errorf("building images: %w", err)
	}
	defer os.RemoveAll(tmp)
	binaries := map[string][]byte{}
	for _, im := range images {
		if binaries[im.Program] != nil {
			continue
		}
		out := filepath.Join(tmp, path.Base(im.Program))
		if err := Compile(ctx, im.Program, opts.Arch, out); err != nil {
			return nil, err
		}
		if binaries[im.Program], err = os.ReadFile(out); err != nil {
			return nil, fmt.Errorf("building images: %w", err)
		}
	}
	if err := os.MkdirAll(opts.Out, 0o755); err != nil {
		return nil, fmt.Errorf("building images: %w", err)
	}
	var written []string
	for _, im := range images {
		img, err := Assemble(im, binaries[im.Program], busybox, opts.Arch)
		if err != nil {
			return nil, err
		}
		file := filepath.Join(opts.Out, im.FileName())
		changed, err := Write(file, im.Ref, img)
		if err != nil {
			return nil, err
		}
		id, err := img.ConfigName()
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", im.Ref, err)
		}
		state := "wrote"
		if !changed {
			state = "unchanged"
		}
		fmt.Fprintf(opts.Log, "%-9s %s  %s  id %s\n", state, file, im.Ref, id)
		written = append(written, file)
	}
	return written, nil
}

// Compile builds the Go program (an import path) for linux/arch into out:
// static, without symbols, and with no path or VCS state in it, so the
// same sources give the same binary.
func Compile(ctx context.Context, program, arch, out string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w", "-o", out, program)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("compiling %s: %w\n%s", program, err, b)
	}
	return nil
}

// LoadBusybox reads a static busybox; the error says how to install one.
func LoadBusybox(file string) ([]byte, error) {
	const install = "the model-fetch image needs a static busybox as its /bin/sh: install it with `apt-get install busybox-static`"
	f, err := elf.Open(file)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("busybox: %s not found: %s", file, install)
	}
	if err != nil {
		return nil, fmt.Errorf("busybox: %s is not an executable: %w: %s", file, err, install)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return nil, fmt.Errorf("busybox: %s is dynamically linked and would not run in an image without libc: %s", file, install)
		}
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("busybox: %w", err)
	}
	return b, nil
}

// epoch is every file's modification time, so builds are reproducible.
var epoch = time.Unix(0, 0)

// entry is one file, directory or link of the layer.
type entry struct {
	header tar.Header
	data   []byte
}

// Assemble is the image im with the binary (and busybox, when im has a
// shell) for linux/arch.
func Assemble(im Image, binary, busybox []byte, arch string) (v1.Image, error) {
	if im.Shell && len(busybox) == 0 {
		return nil, fmt.Errorf("image %s: a shell is wanted but no busybox was given", im.Ref)
	}
	entries := []entry{
		{header: tar.Header{Typeflag: tar.TypeDir, Name: "tmp/", Mode: 0o1777}},
		{header: tar.Header{Typeflag: tar.TypeReg, Name: strings.TrimPrefix(im.Binary, "/"), Mode: 0o755}, data: binary},
	}
	for _, l := range im.Links {
		entries = append(entries, entry{header: tar.Header{Typeflag: tar.TypeSymlink, Name: strings.TrimPrefix(l, "/"), Linkname: im.Binary, Mode: 0o777}})
	}
	if im.Shell {
		entries = append(entries, entry{header: tar.Header{Typeflag: tar.TypeReg, Name: strings.TrimPrefix(BusyboxPath, "/"), Mode: 0o755}, data: busybox})
		for _, c := range ShellCommands {
			entries = append(entries, entry{header: tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/" + c, Linkname: BusyboxPath, Mode: 0o777}})
		}
	}
	layerTar, err := layer(entries)
	if err != nil {
		return nil, fmt.Errorf("image %s: layer: %w", im.Ref, err)
	}
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	})
	if err != nil {
		return nil, fmt.Errorf("image %s: layer: %w", im.Ref, err)
	}
	img, err := mutate.AppendLayers(empty.Image, l)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", im.Ref, err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("image %s: config: %w", im.Ref, err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", arch
	cf.Config = v1.Config{
		Entrypoint: im.Entrypoint,
		Env:        Env,
		User:       User,
		WorkingDir: "/",
		Labels:     map[string]string{"org.opencontainers.image.title": im.Program},
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("image %s: config: %w", im.Ref, err)
	}
	return img, nil
}

// layer is the uncompressed tar of the entries, their parent directories
// added (root-owned, 0755), in path order, every time the epoch.
func layer(entries []entry) ([]byte, error) {
	byName := map[string]entry{}
	for _, e := range entries {
		byName[strings.TrimSuffix(e.header.Name, "/")] = e
	}
	for _, e := range entries {
		for dir := path.Dir(strings.TrimSuffix(e.header.Name, "/")); dir != "."; dir = path.Dir(dir) {
			if _, ok := byName[dir]; !ok {
				byName[dir] = entry{header: tar.Header{Typeflag: tar.TypeDir, Name: dir + "/", Mode: 0o755}}
			}
		}
	}
	names := make([]string, 0, len(byName))
	for n := range byName {
		names = append(names, n)
	}
	slices.Sort(names)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, n := range names {
		e := byName[n]
		h := e.header
		h.ModTime, h.Size, h.Format = epoch, int64(len(e.data)), tar.FormatPAX
		if err := tw.WriteHeader(&h); err != nil {
			return nil, fmt.Errorf("%s: %w", n, err)
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, fmt.Errorf("%s: %w", n, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Write writes img under ref as a docker-archive tarball to file, unless
// file already holds the same image under ref; it says whether it wrote.
func Write(file, ref string, img v1.Image) (bool, error) {
	tag, err := name.NewTag(ref)
	if err != nil {
		return false, fmt.Errorf("image %s: %w", ref, err)
	}
	id, err := img.ConfigName()
	if err != nil {
		return false, fmt.Errorf("image %s: %w", ref, err)
	}
	if old, err := tarball.ImageFromPath(file, &tag); err == nil {
		if oldID, err := old.ConfigName(); err == nil && oldID == id {
			return false, nil
		}
	}
	// Written beside, then renamed: an interrupted build leaves no half file
	// that a later one would take for its image.
	tmp := file + ".partial"
	if err := tarball.WriteToFile(tmp, tag, img); err != nil {
		os.Remove(tmp)
		return false, fmt.Errorf("image %s: writing %s: %w", ref, file, err)
	}
	if err := os.Rename(tmp, file); err != nil {
		return false, fmt.Errorf("image %s: writing %s: %w", ref, file, err)
	}
	return true, nil
}
