# Shell helpers shared by the scripts (sourced, not run).

# Run a command, showing its output only if it fails; returns its status.
quietly() {
  local log status=0
  log=$(mktemp)
  "$@" >"$log" 2>&1 || status=$?
  if [ $status -ne 0 ]; then
    cat "$log" >&2
    echo "failed: $*" >&2
  fi
  rm -f "$log"
  return $status
}

# meson setup DIR OPTIONS..., or --reconfigure when DIR is a build dir already.
meson_setup() {
  local dir=$1
  shift
  if [ -f "$dir/build.ninja" ]; then
    quietly meson setup --reconfigure "$dir" "$@"
  else
    quietly meson setup "$dir" "$@"
  fi
}
