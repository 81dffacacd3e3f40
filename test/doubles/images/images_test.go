package images

import (
	"archive/tar"
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Every image has a valid reference, a tarball of its own, a program that
// exists, and runs something: its entrypoint, or a shell for the pod's
// command.
func TestImagesTable(t *testing.T) {
	files := map[string]bool{}
	for _, im := range Images {
		if _, err := name.NewTag(im.Ref, name.StrictValidation); err != nil {
			t.Errorf("%s: %v", im.Ref, err)
		}
		if files[im.FileName()] {
			t.Errorf("%s: tarball %s is another image's too", im.Ref, im.FileName())
		}
		files[im.FileName()] = true
		dir, ok := strings.CutPrefix(im.Program, Module)
		if _, err := os.Stat(filepath.Join("..", dir, "main.go")); !ok || err != nil {
			t.Errorf("%s: program %s is not a double of %s: %v", im.Ref, im.Program, Module, err)
		}
		if len(im.Entrypoint) == 0 && !im.Shell {
			t.Errorf("%s: neither an entrypoint nor a shell", im.Ref)
		}
		if len(im.Entrypoint) > 0 && im.Entrypoint[0] != im.Binary {
			t.Errorf("%s: entrypoint %q does not run the binary %s", im.Ref, im.Entrypoint, im.Binary)
		}
	}
}

// layerFile is one entry of an image's layer.
type layerFile struct {
	header tar.Header
	data   []byte
}

// readImage reads the image back from a tarball as ctr would find it.
func readImage(t *testing.T, file, ref string) (v1.Image, *v1.ConfigFile, map[string]layerFile) {
	t.Helper()
	tag, err := name.NewTag(ref)
	if err != nil {
		t.Fatal(err)
	}
	img, err := tarball.ImageFromPath(file, &tag)
	if err != nil {
		t.Fatalf("reading %s back as %s: %v", file, ref, err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers: %d, %v; want one", len(layers), err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	files := map[string]layerFile{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(tr)
		files["/"+strings.TrimSuffix(h.Name, "/")] = layerFile{*h, data}
	}
	return img, cf, files
}

func TestBuildPauseImageAndReadItBack(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles a double")
	}
	im := Images[0]
	out := t.TempDir()
	var log strings.Builder
	paths, err := Build(context.Background(), Options{Out: out, Arch: runtime.GOARCH, Log: &log}, []Image{im})
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(out, "pause-test.tar")
	if !slices.Equal(paths, []string{file}) || !strings.HasPrefix(log.String(), "wrote") || strings.Count(log.String(), "\n") != 1 {
		t.Errorf("Build: got %q, log %q; want one line saying %s was written", paths, log.String(), file)
	}
	img, cf, files := readImage(t, file, im.Ref)
	if !slices.Equal(cf.Config.Entrypoint, []string{"/pause"}) || cf.Config.User != "65532:65532" || cf.Config.WorkingDir != "/" {
		t.Errorf("config: entrypoint %q, user %q, workdir %q", cf.Config.Entrypoint, cf.Config.User, cf.Config.WorkingDir)
	}
	if cf.OS != "linux" || cf.Architecture != runtime.GOARCH {
		t.Errorf("platform: %s/%s", cf.OS, cf.Architecture)
	}
	if !slices.Contains(cf.Config.Env, "HOME=/tmp") || !slices.Contains(cf.Config.Env, "PATH=/usr/local/bin:/usr/bin:/bin") {
		t.Errorf("env: %q", cf.Config.Env)
	}
	tmp := files["/tmp"].header
	if tmp.Typeflag != tar.TypeDir || tmp.Mode&0o7777 != 0o1777 {
		t.Errorf("/tmp: type %c mode %o; want a directory with mode 1777", tmp.Typeflag, tmp.Mode)
	}
	bin := files["/pause"]
	if bin.header.Typeflag != tar.TypeReg || bin.header.Mode&0o111 != 0o111 || bin.header.Uid != 0 {
		t.Errorf("/pause: type %c mode %o uid %d; want a root-owned executable", bin.header.Typeflag, bin.header.Mode, bin.header.Uid)
	}
	exe, err := elf.NewFile(bytes.NewReader(bin.data))
	if err != nil {
		t.Fatalf("/pause is not an ELF binary: %v", err)
	}
	for _, p := range exe.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("/pause is dynamically linked: the image has no libc")
		}
	}
	for path, f := range files {
		if !f.header.ModTime.Equal(epoch) {
			t.Errorf("%s: mtime %s; want the epoch, for reproducible builds", path, f.header.ModTime)
		}
	}

	// The same sources give the same image, and its tarball is left alone.
	want, _ := img.Digest()
	log.Reset()
	if _, err := Build(context.Background(), Options{Out: out, Arch: runtime.GOARCH, Log: &log}, []Image{im}); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(log.String(), "unchanged") {
		t.Errorf("second build: got %q, want the tarball unchanged", log.String())
	}
	again, err := Assemble(im, bin.data, nil, runtime.GOARCH)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := again.Digest(); got != want {
		t.Errorf("assembled twice: digests %s and %s", want, got)
	}
}

// The fetch image has busybox as /bin/sh and the double under both names;
// the binaries here are stand-ins, as Assemble does not look into them.
func TestAssembleFetchImage(t *testing.T) {
	i := slices.IndexFunc(Images, func(im Image) bool { return im.Shell })
	im := Images[i]
	img, err := Assemble(im, []byte("fetch double"), []byte("busybox"), "amd64")
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), im.FileName())
	if _, err := Write(file, im.Ref, img); err != nil {
		t.Fatal(err)
	}
	_, cf, files := readImage(t, file, im.Ref)
	if len(cf.Config.Entrypoint) != 0 {
		t.Errorf("entrypoint %q: want none, the pod's command runs /bin/sh", cf.Config.Entrypoint)
	}
	if string(files["/usr/local/bin/huggingface-cli"].data) != "fetch double" || string(files["/bin/busybox"].data) != "busybox" {
		t.Error("the double or busybox is not where the stack calls it")
	}
	links := map[string]string{"/usr/local/bin/aws": "/usr/local/bin/huggingface-cli",
		"/storage-initializer/scripts/initializer-entrypoint": "/usr/local/bin/huggingface-cli"}
	for _, c := range ShellCommands {
		links["/bin/"+c] = "/bin/busybox"
	}
	for link, target := range links {
		if h := files[link].header; h.Typeflag != tar.TypeSymlink || h.Linkname != target {
			t.Errorf("%s: type %c -> %q; want a link to %s", link, h.Typeflag, h.Linkname, target)
		}
	}
	for _, dir := range []string{"/bin", "/usr", "/usr/local", "/usr/local/bin"} {
		if h := files[dir].header; h.Typeflag != tar.TypeDir || h.Mode != 0o755 {
			t.Errorf("%s: type %c mode %o; want a directory with mode 755", dir, h.Typeflag, h.Mode)
		}
	}
	if _, err := Assemble(im, []byte("x"), nil, "amd64"); err == nil {
		t.Error("a shell image without busybox: want an error")
	}
}

func TestLoadBusyboxSaysHowToInstallIt(t *testing.T) {
	dir := t.TempDir()
	if _, err := LoadBusybox(filepath.Join(dir, "busybox")); err == nil || !strings.Contains(err.Error(), "apt-get install busybox-static") {
		t.Errorf("missing: got %v", err)
	}
	script := filepath.Join(dir, "script")
	os.WriteFile(script, []byte("#!/bin/sh\n"), 0o755)
	if _, err := LoadBusybox(script); err == nil || !strings.Contains(err.Error(), "apt-get install busybox-static") {
		t.Errorf("not an ELF binary: got %v", err)
	}
	if _, err := os.Stat(BusyboxPath); err == nil {
		if _, err := LoadBusybox(BusyboxPath); err != nil {
			t.Errorf("this machine's %s: %v", BusyboxPath, err)
		}
	}
}
