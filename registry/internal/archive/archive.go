// Package archive extracts and writes the tar.gz files the registry uses
// (archive artifacts and offline bundles), refusing any entry that would
// land outside the target directory.
package archive

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"github.com/palvella/palvella/registry"
)

// Limits bound what an archive may expand to.
type Limits struct {
	// MaxFiles is the most entries accepted.
	MaxFiles int
	// MaxBytes is the most bytes of file content accepted in total.
	MaxBytes int64
}

// Extract unpacks a tar.gz stream into dest, which must exist. Only regular
// files and directories are accepted; absolute names, names with "..",
// links and devices are refused with ErrUnsafePath before anything of that
// entry is written. Extraction goes through os.Root, so even a directory
// swapped for a symlink cannot make it write outside dest.
func Extract(r io.Reader, dest string, lim Limits) error {
	root, err := os.OpenRoot(dest)
	if err != nil {
		return fmt.Errorf("open extraction directory: %w", err)
	}
	defer root.Close()
	zr, err := gzip.NewReader(r)
	if err != nil {
		return &registry.Error{Kind: registry.ErrInvalidArgument, Field: "archive", Detail: "not a gzip stream", Err: err}
	}
	defer zr.Close()
	tr := tar.NewReader(zr)
	var files int
	var total int64
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return &registry.Error{Kind: registry.ErrInvalidArgument, Field: "archive", Detail: "corrupt tar stream", Err: err}
		}
		files++
		if lim.MaxFiles > 0 && files > lim.MaxFiles {
			return registry.Errorf(registry.ErrInvalidArgument, "archive", fmt.Sprintf("more than %d entries", lim.MaxFiles))
		}
		name, err := SafeName(h.Name)
		if err != nil {
			return err
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := root.MkdirAll(name, 0o755); err != nil {
				return fmt.Errorf("extract %q: %w", name, err)
			}
		case tar.TypeReg:
			total += h.Size
			if lim.MaxBytes > 0 && total > lim.MaxBytes {
				return registry.Errorf(registry.ErrInvalidArgument, "archive", fmt.Sprintf("expands to more than %d bytes", lim.MaxBytes))
			}
			if dir := path.Dir(name); dir != "." {
				if err := root.MkdirAll(dir, 0o755); err != nil {
					return fmt.Errorf("extract %q: %w", name, err)
				}
			}
			mode := os.FileMode(0o644)
			if h.Mode&0o111 != 0 {
				mode = 0o755
			}
			f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
			if err != nil {
				return fmt.Errorf("extract %q: %w", name, err)
			}
			n, err := io.Copy(f, io.LimitReader(tr, h.Size))
			cerr := f.Close()
			if err == nil && n != h.Size {
				err = io.ErrUnexpectedEOF
			}
			if err != nil || cerr != nil {
				return fmt.Errorf("extract %q: %w", name, errors.Join(err, cerr))
			}
		default:
			return &registry.Error{Kind: registry.ErrUnsafePath, Field: h.Name,
				Detail: "archive entry is a link or special file; only regular files and directories are accepted"}
		}
	}
}

// SafeName cleans a tar entry name and refuses one that is absolute or
// climbs out of the extraction directory.
func SafeName(name string) (string, error) {
	bad := &registry.Error{Kind: registry.ErrUnsafePath, Field: name, Detail: "archive entry would be written outside the target directory"}
	if name == "" || strings.ContainsAny(name, "\\\x00") || strings.HasPrefix(name, "/") {
		return "", bad
	}
	clean := path.Clean(name)
	if clean == ".." || strings.HasPrefix(clean, "../") || clean == "." {
		if clean == "." {
			return ".", nil
		}
		return "", bad
	}
	for _, seg := range strings.Split(name, "/") {
		if seg == ".." {
			return "", bad
		}
	}
	return clean, nil
}

// Writer writes a tar.gz.
type Writer struct {
	zw *gzip.Writer
	tw *tar.Writer
}

// NewWriter starts a tar.gz on w.
func NewWriter(w io.Writer) *Writer {
	zw := gzip.NewWriter(w)
	return &Writer{zw: zw, tw: tar.NewWriter(zw)}
}

// AddFile adds the file at src under name with the given mode.
func (w *Writer) AddFile(name, src string, mode int64) error {
	f, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("add %q to archive: %w", name, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("add %q to archive: %w", name, err)
	}
	if err := w.tw.WriteHeader(&tar.Header{Name: name, Mode: mode, Size: st.Size(), Typeflag: tar.TypeReg, Format: tar.FormatPAX}); err != nil {
		return fmt.Errorf("add %q to archive: %w", name, err)
	}
	if _, err := io.Copy(w.tw, f); err != nil {
		return fmt.Errorf("add %q to archive: %w", name, err)
	}
	return nil
}

// AddBytes adds data under name.
func (w *Writer) AddBytes(name string, data []byte, mode int64) error {
	if err := w.tw.WriteHeader(&tar.Header{Name: name, Mode: mode, Size: int64(len(data)), Typeflag: tar.TypeReg, Format: tar.FormatPAX}); err != nil {
		return fmt.Errorf("add %q to archive: %w", name, err)
	}
	if _, err := w.tw.Write(data); err != nil {
		return fmt.Errorf("add %q to archive: %w", name, err)
	}
	return nil
}

// Close finishes the archive.
func (w *Writer) Close() error {
	return errors.Join(w.tw.Close(), w.zw.Close())
}
