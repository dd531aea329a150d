package pluginhost_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/palvella/palvella/core/pluginhost"
)

// copyPlugin writes the test plugin to a file of its own, old enough for
// its identity to be trusted once hashed.
func copyPlugin(t *testing.T) (path string, data []byte) {
	t.Helper()
	t.Cleanup(pluginhost.SetRacyAge(50 * time.Millisecond))
	data, err := os.ReadFile(testPlugin)
	if err != nil {
		t.Fatal(err)
	}
	path = filepath.Join(t.TempDir(), "plugin")
	if err := os.WriteFile(path, data, 0o755); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	return path, data
}

func addAs(t *testing.T, m *pluginhost.Manager, name, path, sum string) *pluginhost.Plugin {
	t.Helper()
	p, err := m.Add(pluginhost.Spec{Name: name, Source: pluginhost.SourcePath, Path: path, SHA256: sum})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// writable waits until path can be opened for writing again: while a
// process runs a file, the kernel refuses to open it for writing.
func writable(t *testing.T, path string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err == nil {
			f.Close()
			return
		}
		if !errors.Is(err, syscall.ETXTBSY) || time.Now().After(deadline) {
			t.Fatalf("open %s for writing: %v", path, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestBinaryIsHashedOnceWhileItStaysTheSameFile(t *testing.T) {
	bin, _ := copyPlugin(t)
	sum, err := pluginhost.SHA256File(bin)
	if err != nil {
		t.Fatal(err)
	}
	m := newManager(t)
	before := pluginhost.Hashes()
	for _, name := range []string{"one", "two", "three"} {
		p := addAs(t, m, name, bin, sum)
		if err := p.Start(context.Background()); err != nil {
			t.Fatalf("start %s: %v", name, err)
		}
		// What runs is the checked file, executed through the descriptor
		// the host holds: the process's executable is that file.
		st := p.Status()
		exe, err := os.Readlink("/proc/" + strconv.Itoa(st.PID) + "/exe")
		if err != nil || exe != bin {
			t.Errorf("%s runs %q (%v), want %s", name, exe, err, bin)
		}
	}
	if n := pluginhost.Hashes() - before; n != 1 {
		t.Errorf("three launches of an unchanged binary hashed it %d times, want 1", n)
	}
}

func TestBinaryModifiedAfterItsFirstLaunchIsRefused(t *testing.T) {
	for _, how := range []string{"in-place", "renamed-over"} {
		t.Run(how, func(t *testing.T) {
			bin, data := copyPlugin(t)
			sum, err := pluginhost.SHA256File(bin)
			if err != nil {
				t.Fatal(err)
			}
			// The manager under test is running; another launches the
			// binary first (the identity of what it hashed is the
			// process's) and is shut down, which kills its plugin.
			m := newManager(t)
			first := newManager(t)
			if err := addAs(t, first, "first", bin, sum).Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			first.Shutdown()
			before := pluginhost.Hashes()
			// A change that keeps the size: only the identity tells.
			data[len(data)/2] ^= 0xff
			switch how {
			case "in-place":
				writable(t, bin)
				fi, err := os.Stat(bin)
				if err != nil {
					t.Fatal(err)
				}
				f, err := os.OpenFile(bin, os.O_WRONLY, 0)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := f.WriteAt(data[len(data)/2:len(data)/2+1], int64(len(data)/2)); err != nil {
					t.Fatal(err)
				}
				f.Close()
				// Put the mtime back as it was: the ctime still moves.
				if err := os.Chtimes(bin, fi.ModTime(), fi.ModTime()); err != nil {
					t.Fatal(err)
				}
			case "renamed-over":
				tmp := bin + ".new"
				if err := os.WriteFile(tmp, data, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.Rename(tmp, bin); err != nil {
					t.Fatal(err)
				}
			}
			err = addAs(t, m, "second", bin, sum).Start(context.Background())
			if !errors.Is(err, pluginhost.ErrChecksum) {
				t.Fatalf("launch after the binary was modified (%s): error = %v, want ErrChecksum", how, err)
			}
			if n := pluginhost.Hashes() - before; n != 1 {
				t.Errorf("the modified binary was hashed %d times at its launch, want 1: its identity moved", n)
			}
			if !strings.Contains(err.Error(), "changed after install") {
				t.Errorf("message %q does not say the binary changed", err)
			}
		})
	}
}

func TestBinaryRenamedOverBySameContentStillLaunches(t *testing.T) {
	bin, data := copyPlugin(t)
	sum, err := pluginhost.SHA256File(bin)
	if err != nil {
		t.Fatal(err)
	}
	m := newManager(t)
	if err := addAs(t, m, "first", bin, sum).Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin+".new", data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(bin+".new", bin); err != nil {
		t.Fatal(err)
	}
	before := pluginhost.Hashes()
	if err := addAs(t, m, "second", bin, sum).Start(context.Background()); err != nil {
		t.Fatalf("launch of a reinstalled identical binary: %v", err)
	}
	if n := pluginhost.Hashes() - before; n != 1 {
		t.Errorf("a binary replaced by another file was hashed %d times at its launch, want 1", n)
	}
}

// A binary removed from its path (an upgrade that deleted the old version)
// is let go at the next launch of any plugin, so that its blocks on disk
// are freed.
func TestRemovedBinaryIsLetGo(t *testing.T) {
	bin, _ := copyPlugin(t)
	sum, err := pluginhost.SHA256File(bin)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := copyPlugin(t)
	m := newManager(t)
	if err := addAs(t, m, "old", bin, sum).Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !pluginhost.Holds(bin) {
		t.Fatalf("%s is not held after its launch", bin)
	}
	if err := m.Remove("old"); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(bin); err != nil {
		t.Fatal(err)
	}
	if err := addAs(t, m, "other", other, sum).Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if pluginhost.Holds(bin) {
		t.Errorf("%s, removed, is still held after another plugin's launch", bin)
	}
}
