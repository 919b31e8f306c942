# Sourced (not run) by the bench scripts: sets $etl to the binary they measure, which is
# $ETL_BIN when given (another build to compare, such as an older commit's, built in a
# `git worktree`), else this tree's release build, built first.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/medium-etl-target}"
if [ -n "${ETL_BIN:-}" ]; then
    etl="$ETL_BIN"
else
    cargo build --release --quiet --bin etl
    etl="$CARGO_TARGET_DIR/release/etl"
fi
