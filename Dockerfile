# syntax=docker/dockerfile:1
#
# irsa-doctor as a container: a fully static musl binary on `scratch`, with
# only a CA bundle beside it. No shell, no package manager, non-root.
#
#   docker buildx build --platform linux/amd64,linux/arm64 -t irsa-doctor:0.1.0 \
#     --build-arg IRSA_DOCTOR_REVISION=$(git rev-parse HEAD) .
#
# The build stage runs on the target platform (emulated where needed), so
# TARGETARCH picks a native musl target and no cross toolchain is involved.
# tests/image.rs keeps the final stage's COPY lines in sync with the file
# list it runs the binary from (chroot, uid 65532, read-only, HTTPS to a
# loopback STS stand-in).

FROM rust:1.95-bookworm AS build
ARG TARGETARCH
# The source revision /metrics shows in irsa_doctor_build_info, read at
# compile time (option_env!): --build-arg IRSA_DOCTOR_REVISION=$(git rev-parse HEAD).
ARG IRSA_DOCTOR_REVISION=unknown
ENV IRSA_DOCTOR_REVISION=${IRSA_DOCTOR_REVISION}
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
RUN case "${TARGETARCH:-amd64}" in \
      amd64) target=x86_64-unknown-linux-musl ;; \
      arm64) target=aarch64-unknown-linux-musl ;; \
      *) echo "unsupported TARGETARCH: ${TARGETARCH}" >&2; exit 1 ;; \
    esac \
 && rustup target add "$target" \
 && cargo build --release --locked --target "$target" --bin irsa-doctor \
 && cp "target/$target/release/irsa-doctor" /irsa-doctor

FROM scratch
LABEL org.opencontainers.image.title="irsa-doctor" \
      org.opencontainers.image.description="Proves from inside a pod that IRSA works, or says exactly why not" \
      org.opencontainers.image.version="0.1.0" \
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
