package selfcheck

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestProblemsNameEachBrokenPromise(t *testing.T) {
	kept := Facts{UID: 65532, GID: 65532, TmpWritable: true}
	if p := kept.Problems(); len(p) != 0 {
		t.Fatalf("non-root on a read-only root: want no problem, got %q", p)
	}
	root := kept
	root.UID = 0
	if p := root.Problems(); len(p) != 1 || !strings.Contains(p[0], "uid 0") {
		t.Errorf("uid 0: want one problem naming uid 0, got %q", p)
	}
	writable := kept
	writable.RootWritable = true
	if p := writable.Problems(); len(p) != 1 || !strings.Contains(p[0], "readOnlyRootFilesystem") {
		t.Errorf("writable root: want one problem naming readOnlyRootFilesystem, got %q", p)
	}
	both := root
	both.RootWritable = true
	if p := both.Problems(); len(p) != 2 {
		t.Errorf("both broken: want two problems, got %q", p)
	}
}

func TestGatherProbesWithoutLeavingFiles(t *testing.T) {
	dir := t.TempDir()
	f := gather(dir, filepath.Join(dir, "missing"), dir)
	if !f.RootWritable {
		t.Error("a temp dir as root: want writable")
	}
	if f.TmpWritable {
		t.Error("a missing dir as /tmp: want not writable")
	}
	if f.ShmBytes <= 0 {
		t.Errorf("statfs of a temp dir: want a size, got %d", f.ShmBytes)
	}
	if readOnly, ok := mountedReadOnly(dir); runtime.GOOS == "linux" && (!ok || readOnly) {
		t.Errorf("the mount of a temp dir: got read-only %v (known %v), want writable", readOnly, ok)
	}
	left, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Errorf("the probe left %d file(s) behind", len(left))
	}
}

func TestWriteMetrics(t *testing.T) {
	var b strings.Builder
	Facts{UID: 65532, RootWritable: true}.WriteMetrics(&b)
	for _, line := range []string{"llm_platform_double_root_writable 1\n", "llm_platform_double_uid 65532\n"} {
		if !strings.Contains(b.String(), line) {
			t.Errorf("metrics lack %q:\n%s", line, b.String())
		}
	}
}
