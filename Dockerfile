# seldon-deploy as a container, for a Job, an Argo Workflow or a Tekton step (see README,
# "Running inside the cluster"). Checked by hadolint in scripts/test.sh; not built there (no
# container engine): `docker build -t seldon-deploy .`
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/seldon-deploy /usr/local/bin/seldon-deploy
ENTRYPOINT ["/usr/local/bin/seldon-deploy"]
