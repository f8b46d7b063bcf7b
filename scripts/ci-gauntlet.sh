#!/usr/bin/env bash
# A scheduler's gauntlet for any shell-driven CI (Jenkins, GitLab, buildbot…):
# setup, build, the test kernel (a cache hit after the first job on a
# machine, or when ~/.cache/ktstr/kernels is restored), then one shard of the
# matrix. Exit code: the gauntlet's (0 only when every cell passed).
#
#   SHARD=2/4 SCHEDULER=scx_simple scripts/ci-gauntlet.sh
#
# Environment (all optional): SHARD (I/N, default 1/1), SCHEDULER (comma
# list, default scx_simple), PLUGIN (default workers,stress-ng), TOPOLOGY
# (default the `small` preset set), OUT (default ./gauntlet-out), and
# GAUNTLET_ARGS for anything else `ktstr gauntlet` takes.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
cargo build --release --workspace
./target/release/ktstr kernel build

out="${OUT:-$PWD/gauntlet-out}"
shard="${SHARD:-1/1}"
# shellcheck disable=SC2086 # GAUNTLET_ARGS is a list of words on purpose
exec ./target/release/ktstr gauntlet \
    --scheduler "${SCHEDULER:-scx_simple}" \
    --plugin "${PLUGIN:-workers,stress-ng}" \
    --topology "${TOPOLOGY:-small}" \
    --shard "$shard" \
    --out "$out" \
    --junit "$out/junit-${shard/\//-of-}.xml" \
    ${GAUNTLET_ARGS:-}
