# syntax=docker/dockerfile:1
#
# irsa-doctor as a container: a fully static musl binary on `scratch`, with
# only a CA bundle beside it. No shell, no package manager, non-root.
#
#   version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
#   docker buildx build --platform linux/amd64,linux/arm64 -t "irsa-doctor:$version" \
#     --build-arg VERSION="$version" --build-arg REVISION="$(git rev-parse HEAD)" \
#     --build-arg CREATED="$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
#     --build-arg SOURCE=https://github.com/<org>/irsa-doctor .
#
# The build stage runs on the target platform (emulated where needed), so
# TARGETARCH picks a native musl target and no cross toolchain is involved.
# tests/image.rs keeps the final stage's COPY lines in sync with the file
# list it runs the binary from (chroot, uid 65532, read-only, HTTPS to a
# loopback STS stand-in).

# Base images: pinned by tag only. Pinning by digest (FROM image:tag@sha256:...,
# the tag kept in a comment) needs the registry's answer, which the machine
# this was written on could not reach; `docker buildx imagetools inspect
# rust:1.95-bookworm` gives the digest to pin.
FROM rust:1.95-bookworm AS build
ARG TARGETARCH
# The commit, REVISION (see the build command above), read at compile time
# (option_env!) for /metrics' irsa_doctor_build_info, and the final stage's
# label.
ARG REVISION=unknown
ENV IRSA_DOCTOR_REVISION=${REVISION}
# The packages' versions follow the pinned base image's Debian release; an
# exact Debian version (DL3008) is dropped from the archive at the next
# point release and would break the build.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends musl-tools ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
# The test kit, a member of the Cargo workspace: cargo loads every member
# before it builds anything, though the binary does not use it
# (tests/image.rs checks that every member is copied).
COPY testkit ./testkit
# The injector, a member too for the same reason; it is a binary of its own
# (docs/injector.md) and nothing of it goes into this image.
COPY injector ./injector
RUN case "${TARGETARCH:-amd64}" in \
      amd64) target=x86_64-unknown-linux-musl ;; \
      arm64) target=aarch64-unknown-linux-musl ;; \
      *) echo "unsupported TARGETARCH: ${TARGETARCH}" >&2; exit 1 ;; \
    esac \
 && rustup target add "$target" \
 && cargo build --release --locked --target "$target" --bin irsa-doctor \
 && cp "target/$target/release/irsa-doctor" /irsa-doctor

FROM scratch
# Given at build time, so that nothing here goes stale: VERSION from
# Cargo.toml, REVISION the commit, CREATED the build time (RFC 3339), SOURCE
# the repository; the build command in docs/image.md fills all four.
ARG VERSION
ARG REVISION
ARG CREATED
ARG SOURCE
LABEL org.opencontainers.image.title="irsa-doctor" \
      org.opencontainers.image.description="Proves from inside a pod that IRSA or EKS Pod Identity works, or says exactly why not" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /irsa-doctor /usr/local/bin/irsa-doctor
# rustls-native-certs looks here; without it TLS to STS fails with
# "no native root CA certificates found!".
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
# On PATH, so `kubectl exec POD -c irsa-doctor -- irsa-doctor check` works.
ENV PATH=/usr/local/bin
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/irsa-doctor"]
CMD ["check"]
