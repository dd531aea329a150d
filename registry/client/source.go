package client

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/palvella/palvella/registry"
	"github.com/palvella/palvella/registry/index"
)

// IndexFile is the name of the index inside a registry folder or URL.
const IndexFile = "index.json"

// Registry configures one registry the client reads.
type Registry struct {
	// Name is how the user calls this registry (e.g. "public", "acme").
	Name string
	// Location is an http(s) URL (of the registry root or of its index
	// file), a folder holding index.json (a registry directory or an
	// imported bundle), or the path of an index file such as registry.json.
	Location string
	// RootKeys are the pinned root public keys. They are never taken from
	// the index.
	RootKeys []ed25519.PublicKey
	// Threshold is how many distinct root keys must sign; 0 means 1.
	Threshold int
	// Names are the plugin name patterns this registry was added for
	// (owner.ParsePattern); empty for an open registry. See package owner.
	Names []string
}

// Source reads an index and its artifacts.
type Source interface {
	// Index returns the raw index bytes (at most index.MaxSize).
	Index(ctx context.Context) ([]byte, error)
	// Open opens the artifact a; size is the length the source announces
	// (-1 when unknown).
	Open(ctx context.Context, a *index.Artifact) (rc io.ReadCloser, size int64, err error)
	// String says where the source is, for messages.
	String() string
}

// NewSource returns the Source for a location: an http(s) URL, a folder or
// an index file. httpc is used for HTTP (nil means NewHTTPClient's, with
// its timeouts). The index read is bounded by index.DefaultMaxSize.
func NewSource(location string, httpc *http.Client) (Source, error) {
	if httpc == nil {
		httpc = NewHTTPClient(Timeouts{})
	}
	if strings.HasPrefix(location, "https://") || strings.HasPrefix(location, "http://") {
		u, err := url.Parse(location)
		if err != nil || u.Host == "" {
			return nil, registry.Errorf(registry.ErrInvalidArgument, "location", "not a valid URL")
		}
		if !strings.HasSuffix(u.Path, ".json") {
			u.Path = strings.TrimSuffix(u.Path, "/") + "/" + IndexFile
		}
		return &httpSource{index: u, client: httpc}, nil
	}
	if location == "" {
		return nil, registry.Errorf(registry.ErrInvalidArgument, "location", "is empty")
	}
	st, err := os.Stat(location)
	if err != nil {
		return nil, fmt.Errorf("open registry %q: %w", location, err)
	}
	file := location
	if st.IsDir() {
		file = filepath.Join(location, IndexFile)
	}
	return &fileSource{file: file, dir: filepath.Dir(file), client: httpc}, nil
}

type httpSource struct {
	index   *url.URL
	client  *http.Client
	maxSize int64
}

func (s *httpSource) setMaxIndexSize(n int64) { s.maxSize = n }

func (s *httpSource) String() string { return s.index.String() }

func (s *httpSource) Index(ctx context.Context) ([]byte, error) {
	rc, _, err := httpGet(ctx, s.client, s.index.String())
	if err != nil {
		return nil, err // "GET URL/index.json: cause" says what was done
	}
	defer rc.Close()
	return readIndex(rc, s.index.String(), s.maxSize)
}

func (s *httpSource) Open(ctx context.Context, a *index.Artifact) (io.ReadCloser, int64, error) {
	ref, err := url.Parse(a.URL)
	if err != nil {
		return nil, 0, registry.Errorf(registry.ErrInvalidIndex, "url", "not a valid URL")
	}
	return httpGet(ctx, s.client, s.index.ResolveReference(ref).String())
}

// readIndex reads at most max bytes (0: index.DefaultMaxSize), stopping at
// the first byte too many: nothing larger is kept in memory or parsed.
func readIndex(r io.Reader, where string, max int64) ([]byte, error) {
	if max <= 0 {
		max = index.DefaultMaxSize
	}
	data, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, fmt.Errorf("read index %s: %w", where, err)
	}
	if int64(len(data)) > max {
		return nil, &registry.Error{Kind: registry.ErrSize, Field: where,
			Detail: fmt.Sprintf("index is larger than %d bytes; it was refused before being parsed", max),
			Hint:   "if the registry really is this large, raise maxIndexBytes in registries.json"}
	}
	return data, nil
}

func httpGet(ctx context.Context, c *http.Client, u string) (io.ReadCloser, int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, 0, fmt.Errorf("request %s: %w", u, err)
	}
	resp, err := c.Do(req)
	if err != nil {
		// The *url.Error says `Get "U": cause`; name the URL once.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, 0, fmt.Errorf("GET %s: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		kind := registry.ErrInvalidArgument
		if resp.StatusCode == http.StatusNotFound {
			kind = registry.ErrNotFound
		}
		return nil, 0, &registry.Error{Kind: kind, Field: u, Detail: "server answered " + resp.Status}
	}
	return resp.Body, resp.ContentLength, nil
}

type fileSource struct {
	file    string
	dir     string
	client  *http.Client
	maxSize int64
}

func (s *fileSource) setMaxIndexSize(n int64) { s.maxSize = n }

func (s *fileSource) String() string { return s.file }

func (s *fileSource) Index(ctx context.Context) ([]byte, error) {
	f, err := os.Open(s.file)
	if err != nil {
		return nil, fmt.Errorf("read index: %w", err)
	}
	defer f.Close()
	return readIndex(f, s.file, s.maxSize)
}

// MirrorPath is where a folder registry or bundle keeps a copy of an
// artifact whose index URL is absolute: blobs/sha256/HEX.
func MirrorPath(sha256hex string) string { return "blobs/sha256/" + sha256hex }

func (s *fileSource) Open(ctx context.Context, a *index.Artifact) (io.ReadCloser, int64, error) {
	rel := a.URL
	absolute := strings.Contains(a.URL, "://")
	if absolute {
		rel = MirrorPath(a.SHA256)
	} else if !index.SafeRelPath(rel) {
		return nil, 0, &registry.Error{Kind: registry.ErrUnsafePath, Field: "url", Detail: a.URL + " leaves the registry folder"}
	}
	root, err := os.OpenRoot(s.dir)
	if err != nil {
		return nil, 0, fmt.Errorf("open registry folder: %w", err)
	}
	defer root.Close()
	f, err := root.Open(filepath.FromSlash(rel))
	if err != nil {
		if absolute && errors.Is(err, fs.ErrNotExist) {
			return httpGet(ctx, s.client, a.URL)
		}
		if errors.Is(err, fs.ErrNotExist) {
			return nil, 0, &registry.Error{Kind: registry.ErrNotFound, Field: a.URL, Detail: "artifact missing from registry folder " + s.dir}
		}
		return nil, 0, fmt.Errorf("open artifact %s: %w", a.URL, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("open artifact %s: %w", a.URL, err)
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, 0, registry.Errorf(registry.ErrInvalidArgument, a.URL, "artifact is not a regular file")
	}
	return f, st.Size(), nil
}
