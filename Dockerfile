# mimecrawl: a static binary on a distroless base, running as an unprivileged user.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/mimecrawl ./cmd/mimecrawl \
 && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/mimecast-sim ./cmd/mimecast-sim \
 && mkdir -p /out/state

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/mimecrawl /usr/local/bin/mimecrawl
COPY --from=build /out/mimecast-sim /usr/local/bin/mimecast-sim
# The state file lives on a volume so that delta tokens survive restarts. The directory belongs
# to the user below, so that a volume Docker creates from it is writable too (Kubernetes gets
# there with fsGroup).
COPY --from=build --chown=65532:65532 /out/state /var/lib/mimecrawl
VOLUME ["/var/lib/mimecrawl"]
WORKDIR /var/lib/mimecrawl
# Numeric, so that Kubernetes can verify runAsNonRoot without reading the image's /etc/passwd
# (65532 is distroless's "nonroot"). deploy/kubernetes sets the same runAsUser/runAsGroup; the
# manifest test checks that they agree.
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/mimecrawl"]
CMD ["crawl", "--config", "/etc/mimecrawl/config.yaml"]
