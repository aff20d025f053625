# Shoal's container image: a static binary on an empty base, run as a
# non-root user, with no shell or package manager at run time.
#
#   docker build -t shoal:dev --build-arg VERSION=$(git describe --tags --always) .
#   docker run --rm shoal:dev version
#
# The Helm chart (deploy/helm/shoal) runs it as user 65532 with a read-only
# root filesystem; the data directory is a volume at /var/lib/shoal.

ARG GO_IMAGE=golang:1.26-bookworm

FROM ${GO_IMAGE} AS build
WORKDIR /src
# Modules first: this layer is reused while only the sources change.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
# CGO off: a static binary that needs no libc in the image.
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/shoal ./cmd/shoal \
 && mkdir -p /out/data

FROM scratch
# Root certificates for HTTPS origins (S3).
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/shoal /usr/local/bin/shoal
# The data directory, owned by the run-time user, for runs without a volume.
COPY --from=build --chown=65532:65532 /out/data /var/lib/shoal
USER 65532:65532
WORKDIR /var/lib/shoal
EXPOSE 7070 7071 4001
ENTRYPOINT ["/usr/local/bin/shoal"]
CMD ["node", "--data-dir", "/var/lib/shoal"]
