# Sourced by scripts/demo and scripts/test: one command run beside the cargo build, its output
# shown after it. The emulators' installs are mostly downloads, and the build leaves a core idle
# for its last minute or two (aws-sdk-ec2, the largest crate, compiles alone), so an install
# started with the build costs no wall time.

# beside COMMAND...: start COMMAND in the background, its output kept for `collect`.
beside() {
    beside_log="$(mktemp)"
    "$@" >"$beside_log" 2>&1 &
    beside_pid=$!
}

# collect: wait for the command `beside` started, print its output; its exit status.
collect() {
    local status=0
    wait "$beside_pid" || status=$?
    cat "$beside_log"
    rm -f "$beside_log"
    return "$status"
}
