# The palvella image: the server (and its builtin plugins) in a small
# non-root image. Build from the repository's root:
#
#   docker build -t palvella:dev .
#
# Two stages: Go builds the binary (with cgo, for the sqlite driver the
# default database and the token and credential stores use), then only the
# binary goes into distroless's base image (glibc, CA certificates, a
# nonroot user, no shell and no package manager). See docs/deploy/kubernetes.md.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=1 go build -trimpath -ldflags '-s -w' -o /out/palvella ./cmd/palvella

FROM gcr.io/distroless/base-debian12:nonroot
COPY --from=build /out/palvella /usr/local/bin/palvella
# nonroot is uid 65532; PALVELLA_HOME is in its home (a volume in Kubernetes).
USER 65532:65532
ENV PALVELLA_HOME=/home/nonroot/.palvella
EXPOSE 7700 7701
ENTRYPOINT ["/usr/local/bin/palvella"]
CMD ["server", "--listen", "0.0.0.0:7700", "--webhook-listen", "0.0.0.0:7701"]
