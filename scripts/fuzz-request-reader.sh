#!/usr/bin/env bash
# A longer differential run of the connection's request reader against NIO's HTTP parser than the
# test suite's (Tests/PortalTests/RequestReaderDifferentialTests.swift): generated and hostile
# requests must be read alike by both, or refused by the portal.
#
#   scripts/fuzz-request-reader.sh                 # 200,000 cases for each of 5 fresh seeds
#   CASES=1000000 SEEDS="1 2 3" scripts/fuzz-request-reader.sh
#
# A disagreement prints the seed, the case number and the bytes; rerun one with
# PORTAL_DIFFERENTIAL_SEED=SEED. Needs a debug build of the tests (swift build --build-tests).
set -euo pipefail
cd "$(dirname "$0")/.."
CASES=${CASES:-200000}
SEEDS=${SEEDS:-$(for _ in 1 2 3 4 5; do od -An -N8 -tu8 /dev/urandom | tr -d ' '; done)}
for seed in $SEEDS; do
    echo "fuzz-request-reader.sh: seed $seed, $CASES cases" >&2
    PORTAL_DIFFERENTIAL_CASES=$CASES PORTAL_DIFFERENTIAL_SEED=$seed swift test --skip-build --filter generatedRequestsAreReadAlikeOrRefused
done
